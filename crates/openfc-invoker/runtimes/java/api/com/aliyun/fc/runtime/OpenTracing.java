// openfc's copy of fc-java-core's interface (1.4.1 shape), written from its documented signatures (runtimes.md §4.1).
package com.aliyun.fc.runtime;

import java.util.Map;

public interface OpenTracing {
    String getSpanContext();

    Map<String, String> getSpanBaggages();

    String getJaegerEndpoint();
}
