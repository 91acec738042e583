// openfc's copy of fc-java-core's interface (1.4.1 shape), written from its documented signatures (runtimes.md §4.1).
package com.aliyun.fc.runtime;

public interface FunctionComputeLogger {
    enum Level { TRACE, DEBUG, INFO, WARN, ERROR, FATAL }

    void trace(String string);

    void debug(String string);

    void info(String string);

    void warn(String string);

    void error(String string);

    void fatal(String string);

    void setLogLevel(Level level);
}
