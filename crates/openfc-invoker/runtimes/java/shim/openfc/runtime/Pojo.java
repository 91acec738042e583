package openfc.runtime;

import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.lang.reflect.Type;

/**
 * PojoRequestHandler's JSON (runtimes.md §4.2): a default Jackson ObjectMapper (Debian's jackson-databind) reads the
 * event into the handler's input type and writes its result; a String result is written as a JSON string.
 * Loaded on the first POJO call only.
 */
final class Pojo {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private Pojo() {
    }

    static Object read(byte[] body, Type type) throws java.io.IOException {
        JavaType t = MAPPER.getTypeFactory().constructType(type);
        return MAPPER.readValue(body, t);
    }

    static byte[] write(Object value) throws java.io.IOException {
        return MAPPER.writeValueAsBytes(value);
    }
}
