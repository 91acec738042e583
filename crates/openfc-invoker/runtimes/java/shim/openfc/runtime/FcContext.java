package openfc.runtime;

import com.aliyun.fc.runtime.Context;
import com.aliyun.fc.runtime.Credentials;
import com.aliyun.fc.runtime.FunctionComputeLogger;
import com.aliyun.fc.runtime.FunctionParam;
import com.aliyun.fc.runtime.OpenTracing;
import com.aliyun.fc.runtime.Service;
import com.sun.net.httpserver.HttpExchange;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Collections;
import java.util.Map;

/**
 * fc-java-core's Context (1.4.1 superset): request values from the x-fc-* headers, the instance's environment as
 * the fallback (like the Python shim).
 */
final class FcContext implements Context, Credentials, FunctionParam, Service, OpenTracing {
    private static final DateTimeFormatter ISO =
        DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private final String requestId;
    private final String accessKeyId, accessKeySecret, securityToken;
    private final String functionName, handler, initializer;
    private final int timeoutMillis, memoryMb;
    private final String serviceName, logProject, logStore, qualifier, versionId;
    private final String spanContext, jaegerEndpoint;
    private final int retryCount;
    private final Logger logger;

    private FcContext(HttpExchange ex, boolean init) {
        requestId = h(ex, "x-fc-request-id", null, "");
        accessKeyId = h(ex, "x-fc-access-key-id", "ALIBABA_CLOUD_ACCESS_KEY_ID", "");
        accessKeySecret = h(ex, "x-fc-access-key-secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "");
        securityToken = h(ex, "x-fc-security-token", "ALIBABA_CLOUD_SECURITY_TOKEN", "");
        functionName = h(ex, "x-fc-function-name", "FC_FUNCTION_NAME", "");
        handler = h(ex, "x-fc-function-handler", "FC_FUNCTION_HANDLER", "");
        initializer = h(ex, "x-fc-function-initializer", "FC_FUNCTION_INITIALIZER", "");
        int timeout = init ? num(h(ex, "x-fc-initialization-timeout", "FC_INITIALIZATION_TIMEOUT", "3"), 3)
            : num(h(ex, "x-fc-function-timeout", "FC_FUNCTION_TIMEOUT", "3"), 3);
        timeoutMillis = timeout * 1000;
        memoryMb = num(h(ex, "x-fc-function-memory", "FC_FUNCTION_MEMORY_SIZE", "128"), 128);
        serviceName = h(ex, "x-fc-service-name", "FC_SERVICE_NAME", "");
        logProject = h(ex, "x-fc-service-logproject", "FC_SERVICE_LOG_PROJECT", "");
        logStore = h(ex, "x-fc-service-logstore", "FC_SERVICE_LOG_STORE", "");
        qualifier = h(ex, "x-fc-qualifier", "FC_QUALIFIER", "LATEST");
        versionId = h(ex, "x-fc-version-id", "FC_VERSION_ID", "");
        spanContext = h(ex, "x-fc-tracing-opentracing-span-context", null, "");
        jaegerEndpoint = h(ex, "x-fc-tracing-jaeger-endpoint", null, "");
        retryCount = num(h(ex, "x-fc-retry-count", null, "0"), 0);
        logger = new Logger(requestId);
    }

    static FcContext from(HttpExchange ex, boolean init) {
        return new FcContext(ex, init);
    }

    private static String h(HttpExchange ex, String header, String env, String dflt) {
        String v = ex.getRequestHeaders().getFirst(header);
        if (v != null && !v.isEmpty()) {
            return v;
        }
        if (env != null) {
            String e = Bootstrap.ENV.get(env);
            if (e != null && !e.isEmpty()) {
                return e;
            }
        }
        return dflt;
    }

    private static int num(String s, int dflt) {
        try {
            return Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    /** FC's log line: `2017-07-05T05:13:35.920Z <request id> [LEVEL] message`. */
    static void logLine(String rid, String level, String message) {
        String line = ISO.format(Instant.now()) + " " + rid + " [" + level + "] " + message + "\n";
        synchronized (Bootstrap.OUT) {
            Bootstrap.OUT.print(line);
            Bootstrap.OUT.flush();
        }
    }

    // Context
    @Override public String getRequestId() { return requestId; }
    @Override public Credentials getExecutionCredentials() { return this; }
    @Override public FunctionParam getFunctionParam() { return this; }
    @Override public Service getService() { return this; }
    @Override public FunctionComputeLogger getLogger() { return logger; }
    @Override public OpenTracing getTracing() { return this; }
    @Override public int getRetryCount() { return retryCount; }

    // Credentials
    @Override public String getAccessKeyId() { return accessKeyId; }
    @Override public String getAccessKeySecret() { return accessKeySecret; }
    @Override public String getSecurityToken() { return securityToken; }

    // FunctionParam
    @Override public String getFunctionName() { return functionName; }
    @Override public String getFunctionHandler() { return handler; }
    @Override public String getFunctionInitializer() { return initializer; }
    @Override public int getExecTimeLimitInMillis() { return timeoutMillis; }
    @Override public int getMemoryLimitInMB() { return memoryMb; }

    // Service
    @Override public String getName() { return serviceName; }
    @Override public String getLogProject() { return logProject; }
    @Override public String getLogStore() { return logStore; }
    @Override public String getQualifier() { return qualifier; }
    @Override public String getVersionId() { return versionId; }

    // OpenTracing (openfc sends no tracing headers: empty values)
    @Override public String getSpanContext() { return spanContext; }
    @Override public Map<String, String> getSpanBaggages() { return Collections.emptyMap(); }
    @Override public String getJaegerEndpoint() { return jaegerEndpoint; }

    static final class Logger implements FunctionComputeLogger {
        private final String rid;
        private volatile Level level = Level.INFO;

        Logger(String rid) {
            this.rid = rid;
        }

        private void log(Level l, String s) {
            if (l.ordinal() >= level.ordinal()) {
                logLine(rid, l.name(), s);
            }
        }

        @Override public void trace(String s) { log(Level.TRACE, s); }
        @Override public void debug(String s) { log(Level.DEBUG, s); }
        @Override public void info(String s) { log(Level.INFO, s); }
        @Override public void warn(String s) { log(Level.WARN, s); }
        @Override public void error(String s) { log(Level.ERROR, s); }
        @Override public void fatal(String s) { log(Level.FATAL, s); }
        @Override public void setLogLevel(Level l) { if (l != null) { level = l; } }
    }
}
