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
        String line = readLine(new FileInputStream(FileDescriptor.in));
        if (line == null || line.isEmpty()) {
            System.exit(0); // no function came: openfc discarded this runtime
        }
        JsonNode activation = (JsonNode) Pojo.read(line.getBytes(StandardCharsets.UTF_8), JsonNode.class);
        Map<String, String> env = new LinkedHashMap<>();
        for (JsonNode kv : activation.get("env")) {
            env.put(kv.get(0).asText(), kv.get(1).asText());
        }
        installEnvironment(env);
    }

    /** Replaces the contents of the map behind System.getenv() (and ProcessBuilder's copy) with `env`. */
    @SuppressWarnings("unchecked")
    static void installEnvironment(Map<String, String> env) throws Exception {
        // sun.misc.Unsafe (module jdk.unsupported, open to all): reads the JDK's private fields without opening
        // java.lang to user code as --add-opens would.
        Field uf = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
        uf.setAccessible(true);
        sun.misc.Unsafe u = (sun.misc.Unsafe) uf.get(null);
        Field view = Class.forName("java.lang.ProcessEnvironment").getDeclaredField("theUnmodifiableEnvironment");
        Object unmodifiable = u.getObject(u.staticFieldBase(view), u.staticFieldOffset(view));
        Field inner = Class.forName("java.util.Collections$UnmodifiableMap").getDeclaredField("m");
        // ProcessEnvironment.StringEnvironment over `theEnvironment`: its put/clear write through.
        Map<String, String> m = (Map<String, String>) u.getObject(unmodifiable, u.objectFieldOffset(inner));
        m.clear();
        m.putAll(env);
        if (!System.getenv().equals(env)) {
            throw new IllegalStateException("the function's environment could not be installed in this JVM");
        }
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

    /**
     * One request through a throwaway server on a loopback port: loads and runs the HTTP server's classes the
     * function's first request would otherwise load (tens of milliseconds of a cold JVM), and Jackson's.
     */
    private static void warmUp() {
        try {
            Pojo.write(Pojo.read("{\"a\":[1,\"b\",{\"c\":true}]}".getBytes(StandardCharsets.UTF_8), Map.class));
            Class.forName("openfc.runtime.FcContext", true, Prestart.class.getClassLoader());
            Class.forName("java.net.URLClassLoader", true, null);
            HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 8);
            server.createContext("/", ex -> {
                ex.getRequestHeaders().getFirst("x-fc-control-path");
                Bootstrap.readAll(ex.getRequestBody());
                byte[] out = "ok".getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().set("Content-Type", "application/octet-stream");
                ex.sendResponseHeaders(200, out.length);
                try (OutputStream os = ex.getResponseBody()) {
                    os.write(out);
                }
                ex.close();
            });
            server.start();
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), server.getAddress().getPort())) {
                s.getOutputStream().write(("POST /invoke HTTP/1.1\r\nHost: localhost\r\nx-fc-request-id: warm-up\r\n"
                    + "Content-Type: application/octet-stream\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                    .getBytes(StandardCharsets.ISO_8859_1));
                s.getOutputStream().flush();
                Bootstrap.readAll(s.getInputStream());
            }
            server.stop(0);
        } catch (Throwable t) {
            // Only a warm-up: the function's first request loads what this did not.
        }
    }
}
