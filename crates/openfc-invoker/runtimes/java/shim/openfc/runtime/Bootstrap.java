/*
 * openfc built-in Java runtime (java8 / java11 on OpenJDK 17), runtimes.md §4.
 *
 * Run as: java <JVM options from openfc> -cp /var/fc/runtime/java/classes:<Debian's Jackson jars> openfc.runtime.Bootstrap
 * (pre-started ahead of need with OPENFC_PRESTARTED=1: see Prestart).
 *
 * Speaks the custom-runtime HTTP contract (fc-api.md §8.1) on FC_CUSTOM_LISTEN_PORT, like the Python and Node.js
 * shims:
 *   POST /invoke       StreamRequestHandler / PojoRequestHandler (handler `package.Class::method`)
 *   POST /initialize   FunctionInitializer, once per instance
 *   GET  /pre-stop     PreStopHandler       (x-fc-instance-lifecycle-pre-stop-handler)
 *   GET  /pre-freeze   PreFreezeHandler     (x-fc-instance-lifecycle-pre-freeze-handler)
 *   x-fc-control-path: /http-invoke   HttpRequestHandler: not supported yet, refused with an error body.
 * Failures answer 404 with `x-fc-status: 404`, `x-fc-error-type: UnhandledInvocationError` and FC's Java body
 * {"errorMessage", "errorType", "errorCause", "stackTrace": ["cls.method(File.java:N)", ...]} (runtimes.md §2.3).
 *
 * Class loaders (runtimes.md §4.3): the JVM's class path holds this shim, openfc's copies of the fc-java-core
 * interfaces (package com.aliyun.fc.runtime) and Jackson. User code gets its own loader over FC's class path
 * (/code, /code/*.jar, /code/lib/*.jar, $CLASSPATH, /opt/java/lib/*.jar) whose parent shows it only the JDK,
 * com.aliyun.fc.runtime and Jackson's annotations: parent-first, so a jar bundling its own fc-java-core gets
 * openfc's (one type for both sides), and a jar bundling its own Jackson keeps it.
 */
package openfc.runtime;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.InetSocketAddress;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;

public final class Bootstrap {
    static final String UNHANDLED = "UnhandledInvocationError";
    static final PrintStream OUT = System.out;
    static final Map<String, String> ENV = System.getenv();

    private static volatile ClassLoader userLoader;
    static final Map<Class<?>, Object> INSTANCES = new ConcurrentHashMap<>();
    private static final Object INIT_LOCK = new Object();
    private static volatile boolean initialized;

    /** While a pre-started JVM warms up (Prestart): the loader its throwaway handler resolves through. */
    static volatile ClassLoader warming;

    public static void main(String[] args) throws Exception {
        // Unbound until the port is known: a pre-started JVM has it configured while it waits.
        HttpServer server = server();
        if ("1".equals(ENV.get("OPENFC_PRESTARTED"))) {
            Prestart.awaitFunction();
        }
        int port = Integer.parseInt(env("FC_CUSTOM_LISTEN_PORT", "9000"));
        server.bind(new InetSocketAddress("0.0.0.0", port), 128);
        server.start();
    }

    static HttpServer server() throws IOException {
        HttpServer server = HttpServer.create();
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "fc-request");
            t.setDaemon(false);
            return t;
        }));
        server.createContext("/", Bootstrap::handle);
        return server;
    }

    static String env(String name, String dflt) {
        String v = ENV.get(name);
        return v == null || v.isEmpty() ? dflt : v;
    }

    // --- markers ---------------------------------------------------------------------------------------------------

    static void marker(String kind, String phase, String rid) {
        if (warming != null) {
            return; // the warm-up's request is nobody's
        }
        synchronized (OUT) {
            OUT.print("FC " + kind + " " + phase + " RequestId: " + rid + "\n");
            OUT.flush();
        }
    }

    // --- dispatch --------------------------------------------------------------------------------------------------

    private static void handle(HttpExchange ex) throws IOException {
        Reply reply;
        try {
            String control = ex.getRequestHeaders().getFirst("x-fc-control-path");
            String route = control != null && !control.isEmpty() ? control : ex.getRequestURI().getPath();
            byte[] body = readAll(ex.getRequestBody());
            switch (route) {
                case "/invoke": reply = invoke(ex, body, false); break;
                case "/http-invoke": reply = invoke(ex, body, true); break;
                case "/initialize": reply = initialize(ex); break;
                case "/pre-stop": reply = lifecycle(ex, "PreStop", "x-fc-instance-lifecycle-pre-stop-handler", "preStop"); break;
                case "/pre-freeze": reply = lifecycle(ex, "PreFreeze", "x-fc-instance-lifecycle-pre-freeze-handler", "preFreeze"); break;
                default: reply = new Reply(400, "text/plain", ("unknown control path " + route).getBytes(StandardCharsets.UTF_8));
            }
        } catch (Throwable t) {
            reply = errorReply(t, header(ex, "x-fc-request-id", ""));
        }
        if (reply.error) {
            ex.getResponseHeaders().set("x-fc-status", "404");
            ex.getResponseHeaders().set("x-fc-error-type", UNHANDLED);
        }
        if (reply.contentType != null) {
            ex.getResponseHeaders().set("Content-Type", reply.contentType);
        }
        ex.sendResponseHeaders(reply.status, reply.body.length == 0 ? -1 : reply.body.length);
        if (reply.body.length > 0) {
            try (OutputStream os = ex.getResponseBody()) {
                os.write(reply.body);
            }
        }
        ex.close();
    }

    static String header(HttpExchange ex, String name, String dflt) {
        String v = ex.getRequestHeaders().getFirst(name);
        return v == null ? dflt : v;
    }

    static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[65536];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    // --- invoke ----------------------------------------------------------------------------------------------------

    private static Reply invoke(HttpExchange ex, byte[] body, boolean http) {
        String rid = header(ex, "x-fc-request-id", "");
        FcContext ctx = FcContext.from(ex, false);
        marker("Invoke", "Start", rid);
        try {
            if (http) {
                throw new UnsupportedOperationException(
                    "HttpRequestHandler (servlet HTTP functions) is not supported by openfc's java runtime yet; "
                        + "use a StreamRequestHandler or PojoRequestHandler, or a custom runtime");
            }
            String handler = header(ex, "x-fc-function-handler", env("FC_FUNCTION_HANDLER", ""));
            Target t = resolve(handler);
            Method m = t.method;
            Class<?>[] params = m.getParameterTypes();
            if (params.length == 3 && params[0] == InputStream.class && params[1] == OutputStream.class) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                call(t, new java.io.ByteArrayInputStream(body), out, ctx);
                return new Reply(200, "application/octet-stream", out.toByteArray());
            }
            if (params.length == 3 && params[0].getName().equals("javax.servlet.http.HttpServletRequest")) {
                throw new UnsupportedOperationException(
                    "HttpRequestHandler (servlet HTTP functions) is not supported by openfc's java runtime yet; "
                        + "use a StreamRequestHandler or PojoRequestHandler, or a custom runtime");
            }
            // PojoRequestHandler: event JSON -> the method's input type, result -> JSON (Jackson, runtimes.md §4.2).
            Object input = Pojo.read(body, m.getGenericParameterTypes()[0]);
            Object result = call(t, input, ctx);
            return new Reply(200, "application/json", Pojo.write(result));
        } catch (Throwable e) {
            return errorReply(unwrap(e), rid);
        } finally {
            marker("Invoke", "End", rid);
        }
    }

    private static Reply initialize(HttpExchange ex) {
        String rid = header(ex, "x-fc-request-id", "");
        String name = header(ex, "x-fc-function-initializer", env("FC_FUNCTION_INITIALIZER", ""));
        synchronized (INIT_LOCK) {
            if (initialized || name.isEmpty()) {
                return new Reply(200, null, new byte[0]);
            }
            marker("Initialize", "Start", rid);
            try {
                Target t = resolve(name);
                call(t, FcContext.from(ex, true));
                initialized = true;
                return new Reply(200, null, new byte[0]);
            } catch (Throwable e) {
                return errorReply(unwrap(e), rid);
            } finally {
                marker("Initialize", "End", rid);
            }
        }
    }

    private static Reply lifecycle(HttpExchange ex, String kind, String headerName, String method) {
        String rid = header(ex, "x-fc-request-id", "");
        String name = header(ex, headerName, "");
        if (name.isEmpty()) {
            return new Reply(200, null, new byte[0]);
        }
        marker(kind, "Start", rid);
        try {
            call(resolve(name), FcContext.from(ex, false));
            return new Reply(200, null, new byte[0]);
        } catch (Throwable e) {
            return errorReply(unwrap(e), rid);
        } finally {
            marker(kind, "End", rid);
        }
    }

    // --- handlers --------------------------------------------------------------------------------------------------

    static final class Target {
        final Object instance;
        final Method method;

        Target(Object instance, Method method) {
            this.instance = instance;
            this.method = method;
        }
    }

    static final Map<String, Target> TARGETS = new ConcurrentHashMap<>();

    /** `package.Class::method`: one object per class per instance (shared by the handler and its hooks). */
    static Target resolve(String handler) throws Exception {
        Target cached = TARGETS.get(handler);
        if (cached != null) {
            return cached;
        }
        int sep = handler.indexOf("::");
        if (sep <= 0 || sep + 2 >= handler.length() || handler.indexOf("::", sep + 2) >= 0) {
            throw new IllegalArgumentException("Invalid handler '" + handler + "': expected [package].[class]::[method]");
        }
        String className = handler.substring(0, sep);
        String methodName = handler.substring(sep + 2);
        Class<?> cls;
        try {
            cls = Class.forName(className, true, loader());
        } catch (ClassNotFoundException e) {
            throw new ClassNotFoundException("Class " + className + " not found in /code (classes, *.jar, lib/*.jar)");
        }
        Method found = null;
        for (Method m : cls.getMethods()) {
            if (!m.getName().equals(methodName) || m.isBridge() || m.isSynthetic()) {
                continue;
            }
            if (found == null) {
                found = m;
            }
        }
        if (found == null) {
            throw new NoSuchMethodException("Method " + methodName + " not found in class " + className);
        }
        Object instance = null;
        if (!Modifier.isStatic(found.getModifiers())) {
            final Class<?> c = cls;
            instance = INSTANCES.computeIfAbsent(c, k -> {
                try {
                    java.lang.reflect.Constructor<?> ctor = k.getDeclaredConstructor();
                    ctor.setAccessible(true);
                    return ctor.newInstance();
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("cannot create an instance of " + k.getName() + ": " + e, e);
                }
            });
        }
        Target t = new Target(instance, found);
        TARGETS.put(handler, t);
        return t;
    }

    static Object call(Target t, Object... args) throws Throwable {
        Thread th = Thread.currentThread();
        ClassLoader before = th.getContextClassLoader();
        th.setContextClassLoader(loader());
        try {
            return t.method.invoke(t.instance, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        } finally {
            th.setContextClassLoader(before);
        }
    }

    static Throwable unwrap(Throwable e) {
        while ((e instanceof InvocationTargetException || e instanceof ExceptionInInitializerError) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    // --- class path ------------------------------------------------------------------------------------------------

    static ClassLoader loader() throws IOException {
        ClassLoader w = warming;
        if (w != null) {
            return w;
        }
        ClassLoader l = userLoader;
        if (l != null) {
            return l;
        }
        synchronized (Bootstrap.class) {
            if (userLoader == null) {
                List<URL> urls = new ArrayList<>();
                String code = env("FC_FUNC_CODE_PATH", "/code");
                urls.add(new File(code).toURI().toURL());
                addJars(urls, new File(code));
                addJars(urls, new File(code, "lib"));
                String cp = ENV.get("CLASSPATH");
                if (cp != null) {
                    for (String e : cp.split(":")) {
                        if (e.isEmpty()) {
                            continue;
                        }
                        if (e.endsWith("/*")) {
                            addJars(urls, new File(e.substring(0, e.length() - 2)));
                        } else {
                            urls.add(new File(e).toURI().toURL());
                        }
                    }
                }
                addJars(urls, new File("/opt/java/lib"));
                userLoader = new URLClassLoader(urls.toArray(new URL[0]), new ApiLoader(Bootstrap.class.getClassLoader()));
            }
            return userLoader;
        }
    }

    private static void addJars(List<URL> urls, File dir) throws IOException {
        File[] files = dir.listFiles((d, n) -> n.endsWith(".jar"));
        if (files == null) {
            return;
        }
        Arrays.sort(files);
        for (File f : files) {
            urls.add(f.toURI().toURL());
        }
    }

    /** The user loader's parent: the JDK, plus the shared API packages from the shim's loader. */
    static final class ApiLoader extends ClassLoader {
        private final ClassLoader shim;

        ApiLoader(ClassLoader shim) {
            super(ClassLoader.getPlatformClassLoader());
            this.shim = shim;
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            if (name.startsWith("com.aliyun.fc.runtime.") || name.startsWith("com.fasterxml.jackson.annotation.")) {
                return shim.loadClass(name);
            }
            return super.loadClass(name, resolve);
        }

        @Override
        public URL getResource(String name) {
            if (name.startsWith("com/aliyun/fc/runtime/") || name.startsWith("com/fasterxml/jackson/annotation/")) {
                return shim.getResource(name);
            }
            return super.getResource(name);
        }
    }

    // --- errors ----------------------------------------------------------------------------------------------------

    static final class Reply {
        final int status;
        final String contentType;
        final byte[] body;
        boolean error;

        Reply(int status, String contentType, byte[] body) {
            this.status = status;
            this.contentType = contentType;
            this.body = body;
        }
    }

    /** FC's Java error body (runtimes.md §2.3); the stack trace keeps the user's frames only. */
    static Reply errorReply(Throwable e, String rid) {
        String message = e.getMessage() != null ? e.getMessage() : e.getClass().getName();
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String cause = root.getMessage() != null ? root.getMessage() : root.getClass().getName();
        List<String> stack = new ArrayList<>();
        for (StackTraceElement el : e.getStackTrace()) {
            String c = el.getClassName();
            if (c.startsWith("openfc.runtime.") || c.startsWith("jdk.internal.reflect.") || c.startsWith("java.lang.reflect.")
                || c.startsWith("sun.net.httpserver.") || c.startsWith("com.sun.net.httpserver.")
                || c.startsWith("java.util.concurrent.ThreadPoolExecutor") || c.equals("java.lang.Thread")) {
                continue;
            }
            stack.add(el.toString());
        }
        StringBuilder json = new StringBuilder();
        json.append("{\"errorMessage\":").append(Json.quote(message))
            .append(",\"errorType\":").append(Json.quote(e.getClass().getName()))
            .append(",\"errorCause\":").append(Json.quote(cause))
            .append(",\"stackTrace\":[");
        for (int i = 0; i < stack.size(); i++) {
            json.append(i == 0 ? "" : ",").append(Json.quote(stack.get(i)));
        }
        json.append("]}");
        StringBuilder log = new StringBuilder(e.toString());
        for (String s : stack) {
            log.append("\n\tat ").append(s);
        }
        FcContext.logLine(rid, "ERROR", log.toString());
        Reply r = new Reply(404, "application/json", json.toString().getBytes(StandardCharsets.UTF_8));
        r.error = true;
        return r;
    }
}
