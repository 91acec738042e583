// openfc's copy of fc-java-core's interface (1.4.1 shape), written from its documented signatures (runtimes.md §4.1).
package com.aliyun.fc.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

public interface StreamRequestHandler {
    void handleRequest(InputStream input, OutputStream output, Context context) throws IOException;
}
