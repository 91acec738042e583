package openfc.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A pre-started JVM (OPENFC_PRESTARTED=1, runtimes.md §4.6): the JVM boots, the shim's classes load and its HTTP
 * path runs once on a throwaway loopback server while no function is known; then one line on stdin — written by the
 * sandbox's init once the function's package is at /code and its limits are set — gives the function's
 * environment, installed as what System.getenv() answers before any user class loads (the user class loader is
 * created at the first request, over the class path as it is then).
 *
 * The heap was sized at start for the memory size openfc keyed this JVM by. What a pre-started JVM cannot change:
 * its working directory stays "/" (Java has no chdir, and a mount over a process's cwd does not change what relative
 * paths open), native code's C environment (getenv(3)) keeps the generic one, and java.library.path was given on
 * the command line.
 */
final class Prestart {
    private Prestart() {
    }

    static void awaitFunction() throws Exception {
        warmUp();
        Map<String, String> environment = environmentMap();
        String line = readLine(new FileInputStream(FileDescriptor.in));
        if (line == null || line.isEmpty()) {
            System.exit(0); // no function came: openfc discarded this runtime
        }
        JsonNode activation = (JsonNode) Pojo.read(line.getBytes(StandardCharsets.UTF_8), JsonNode.class);
        Map<String, String> env = new LinkedHashMap<>();
        for (JsonNode kv : activation.get("env")) {
            env.put(kv.get(0).asText(), kv.get(1).asText());
        }
        environment.clear();
        environment.putAll(env);
        if (!System.getenv().equals(env)) {
            throw new IllegalStateException("the function's environment could not be installed in this JVM");
        }
    }

    /**
     * The map behind System.getenv() (and ProcessBuilder's copy): ProcessEnvironment's StringEnvironment over
     * `theEnvironment`, whose put/clear write through. Found through sun.misc.Unsafe (module jdk.unsupported, open to
     * all), which reads the JDK's private fields without opening java.lang to user code as --add-opens would.
     */
    @SuppressWarnings("unchecked")
    static Map<String, String> environmentMap() throws Exception {
        Field uf = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
        uf.setAccessible(true);
        sun.misc.Unsafe u = (sun.misc.Unsafe) uf.get(null);
        Field view = Class.forName("java.lang.ProcessEnvironment").getDeclaredField("theUnmodifiableEnvironment");
        Object unmodifiable = u.getObject(u.staticFieldBase(view), u.staticFieldOffset(view));
        Field inner = Class.forName("java.util.Collections$UnmodifiableMap").getDeclaredField("m");
        return (Map<String, String>) u.getObject(unmodifiable, u.objectFieldOffset(inner));
    }

    private static String readLine(InputStream in) throws java.io.IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) >= 0 && b != '\n') {
            line.write(b);
        }
        if (b < 0 && line.size() == 0) {
            return null;
        }
        return new String(line.toByteArray(), StandardCharsets.UTF_8);
    }

    /** The warm-up's handler, loaded (like user code) by a throwaway class loader. */
    public static final class Warm {
        public void handleRequest(InputStream in, OutputStream out, com.aliyun.fc.runtime.Context context) throws java.io.IOException {
            context.getFunctionParam().getFunctionName();
            context.getExecutionCredentials().getAccessKeyId();
            context.getLogger();
            // (Not through Bootstrap: this class's loader would define a copy of it.)
            byte[] b = new byte[4096];
            int n;
            while ((n = in.read(b)) > 0) {
                out.write(b, 0, n);
            }
        }
    }

    /**
     * Requests through the shim's own request path (Bootstrap.handle) on a throwaway loopback server, with a handler
     * loaded by a throwaway URLClassLoader (over the shim's classes and a Debian jar, as user code is over /code):
     * loads and runs once what the function's first request would otherwise load and interpret cold — the HTTP
     * server, header parsing, the Context, class loading from a jar, reflection, Jackson. Markers are off and the
     * caches emptied afterwards: nothing of it is seen by the function.
     */
    private static void warmUp() {
        try {
            Pojo.write(Pojo.read("{\"a\":[1,\"b\",{\"c\":true}]}".getBytes(StandardCharsets.UTF_8), Map.class));
            java.net.URL shim = Prestart.class.getProtectionDomain().getCodeSource().getLocation();
            java.net.URL jar = new java.io.File("/usr/share/java/jackson-core.jar").toURI().toURL();
            java.net.URLClassLoader loader = new java.net.URLClassLoader(new java.net.URL[] {shim, jar},
                new Bootstrap.ApiLoader(Prestart.class.getClassLoader()));
            Class.forName("com.fasterxml.jackson.core.JsonFactory", false, loader);
            Bootstrap.warming = loader;
            HttpServer server = Bootstrap.server();
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 8);
            server.start();
            try {
                for (int i = 0; i < 3; i++) {
                    request(server.getAddress().getPort());
                }
            } finally {
                server.stop(0);
                Bootstrap.TARGETS.clear();
                Bootstrap.INSTANCES.clear();
                Bootstrap.warming = null;
                loader.close();
            }
        } catch (Throwable t) {
            Bootstrap.warming = null;
            // Only a warm-up: the function's first request loads what this did not.
        }
    }

    private static void request(int port) throws java.io.IOException {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setTcpNoDelay(true);
            s.getOutputStream().write(("POST /invoke HTTP/1.1\r\nHost: localhost\r\nx-fc-request-id: warm-up\r\n"
                + "x-fc-function-handler: openfc.runtime.Prestart$Warm::handleRequest\r\nx-fc-function-name: warm-up\r\n"
                + "x-fc-function-memory: 128\r\nx-fc-function-timeout: 3\r\nx-fc-access-key-id: x\r\n"
                + "Content-Type: application/octet-stream\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            Bootstrap.readAll(s.getInputStream());
        }
    }
}
