<?php
/**
 * The PHP runtime's parts (loaded by bootstrap.php): the Runtime API client, FC's `$context`, handler loading,
 * the logger, errors as FC shapes them, and HTTP invocations as PSR-7 messages. Namespace ServerlessFC, as FC's
 * own runtime; nothing here is defined in the global namespace, so user code keeps every global name.
 */

namespace ServerlessFC;

const SHIM_DIR = '/var/fc/runtime/php7.2';
const API_PREFIX = '/2020-11-11/runtime/';
const HANDLE_FUNCTION = '0';
const INIT_FUNCTION = '1';
const PRESTOP_FUNCTION = '2';
const PREFREEZE_FUNCTION = '3';
/** The FC_* variables user code may see in $_ENV (FC's FC_SAFE_ENV); the others are removed from it. */
const FC_SAFE_ENV = array(
    'FC_FUNC_CODE_PATH', 'FC_FUNCTION_MEMORY_SIZE', 'FC_RUNTIME_VERSION', 'FC_ACCOUNT_ID', 'FC_FUNCTION_HANDLER',
    'FC_FUNCTION_NAME', 'FC_SERVICE_NAME', 'FC_VER_ID', 'FC_QUALIFIER', 'FC_REGION', 'FC_INSTANCE_ID',
);
/** Namespaces found in Debian's /usr/share/php by their path (php-monolog, php-psr-log, php-guzzlehttp-psr7,
 * php-psr-http-message), loaded only when used. */
const DEBIAN_NAMESPACES = array('Monolog\\', 'Psr\\Log\\', 'GuzzleHttp\\Psr7\\', 'Psr\\Http\\Message\\');

final class State
{
    /** The request being served (the logger's `%context%`). */
    public static $requestId = '';
    /** User files already included. */
    public static $loaded = array();
}

/** Runtime API over one keep-alive HTTP/1.1 connection (openfc's server always sends Content-Length). */
final class RuntimeApiClient
{
    private $address;
    private $socket;

    public function __construct($address)
    {
        $this->address = $address;
    }

    private function connect()
    {
        $context = stream_context_create(array('socket' => array('tcp_nodelay' => true)));
        $socket = @stream_socket_client("tcp://{$this->address}", $errno, $errstr, 5, STREAM_CLIENT_CONNECT, $context);
        if ($socket === false) {
            throw new \RuntimeException("cannot reach the Runtime API at {$this->address}: $errstr");
        }
        // `/next` is a long poll: no read timeout.
        stream_set_timeout($socket, 31536000);
        $this->socket = $socket;
    }

    /** @return array [status, headers (lower-case names), body] */
    public function request($method, $path, array $headers = array(), $body = '')
    {
        $head = "$method $path HTTP/1.1\r\nHost: {$this->address}\r\nUser-Agent: openfc-php\r\nContent-Length: " . strlen($body) . "\r\n";
        foreach ($headers as $name => $value) {
            $head .= "$name: $value\r\n";
        }
        $message = $head . "\r\n" . $body;
        for ($attempt = 0;; $attempt++) {
            try {
                if ($this->socket === null) {
                    $this->connect();
                }
                $this->write($message);
                return $this->read();
            } catch (\RuntimeException $e) {
                $this->socket = null;
                if ($attempt > 0) {
                    throw $e;
                }
            }
        }
    }

    private function write($data)
    {
        while ($data !== '') {
            $n = @fwrite($this->socket, $data);
            if ($n === false || $n === 0) {
                throw new \RuntimeException('the Runtime API connection closed');
            }
            $data = (string) substr($data, $n);
        }
    }

    private function read()
    {
        $line = fgets($this->socket);
        if ($line === false) {
            throw new \RuntimeException('the Runtime API connection closed');
        }
        $status = (int) substr($line, 9, 3);
        $headers = array();
        while (($line = fgets($this->socket)) !== false) {
            $line = rtrim($line, "\r\n");
            if ($line === '') {
                break;
            }
            $parts = explode(':', $line, 2);
            $headers[strtolower($parts[0])] = isset($parts[1]) ? trim($parts[1]) : '';
        }
        $length = isset($headers['content-length']) ? (int) $headers['content-length'] : 0;
        $body = '';
        while (strlen($body) < $length) {
            $chunk = fread($this->socket, $length - strlen($body));
            if ($chunk === false || $chunk === '') {
                throw new \RuntimeException('the Runtime API connection closed mid-body');
            }
            $body .= $chunk;
        }
        return array($status, $headers, $body);
    }
}

function main()
{
    if (getenv('OPENFC_PRESTARTED') === '1') {
        await_function();
    }
    $api = getenv('FC_RUNTIME_API');
    if ($api === false || $api === '') {
        fwrite(STDERR, "expected ali FC environment variables [FC_RUNTIME_API] are not defined\n");
        return 1;
    }
    setup();
    $client = new RuntimeApiClient($api);
    while (true) {
        list($status, $headers, $event) = $client->request('GET', API_PREFIX . 'invocation/next');
        if ($status === 410) {
            return 0; // the instance is stopping
        }
        if ($status !== 200) {
            usleep(10000);
            continue;
        }
        $requestId = isset($headers['x-fc-request-id']) ? $headers['x-fc-request-id'] : '';
        list($ok, $replyHeaders, $reply) = serve($headers, $event);
        $path = API_PREFIX . 'invocation/' . rawurlencode($requestId) . ($ok ? '/response' : '/error');
        $client->request('POST', $path, $replyHeaders + array('Content-Type' => 'application/json'), $reply);
    }
}

/**
 * A pre-started runtime (OPENFC_PRESTARTED=1): PHP has started and the shim's classes, Monolog's and the PSR-7
 * ones are loaded while no function is known; then one line on stdin — written by the sandbox's init once the
 * function's package is at /code and its limits are set — gives the function's environment, which replaces the
 * process's (putenv: native code's getenv sees it too), `$_ENV` and `$_SERVER`'s copy. What PHP read at its own
 * start stays: php.ini and PHP_INI_SCAN_DIR (openfc starts a fresh PHP for packages with their own extensions).
 */
function await_function()
{
    spl_autoload_register('ServerlessFC\\autoload');
    logger();
    foreach (array('GuzzleHttp\\Psr7\\ServerRequest', 'GuzzleHttp\\Psr7\\Response', 'GuzzleHttp\\Psr7\\Utils',
        'GuzzleHttp\\Psr7\\Stream', 'GuzzleHttp\\Psr7\\Uri') as $class) {
        class_exists($class);
    }
    $line = fgets(STDIN);
    if ($line === false || trim($line) === '') {
        exit(0); // no function came: openfc discarded this runtime
    }
    $env = array();
    foreach (json_decode($line, true)['env'] as $kv) {
        $env[$kv[0]] = $kv[1];
    }
    foreach (array_keys(getenv()) as $name) {
        if (!array_key_exists($name, $env)) {
            putenv($name);
            unset($_SERVER[$name]);
        }
    }
    foreach ($env as $name => $value) {
        putenv("$name=$value");
        $_SERVER[$name] = $value;
    }
    $_ENV = $env;
    // It started in "/" while /code was still empty; a fresh PHP starts in /code.
    chdir(isset($env['FC_FUNC_CODE_PATH']) ? $env['FC_FUNC_CODE_PATH'] : '/code');
}

/** Process-wide settings, once, before any user code. */
function setup()
{
    // FC: 3072 MB, or the function's memory size when larger (the cgroup is the real limit).
    $memory = (int) getenv('FC_FUNCTION_MEMORY_SIZE');
    ini_set('memory_limit', max(3072, $memory) . 'M');
    $code = getenv('FC_FUNC_CODE_PATH') ?: '/code';
    set_include_path(implode(PATH_SEPARATOR, array(rtrim($code, '/'), '/opt/php', SHIM_DIR, get_include_path())));
    foreach (array_keys($_ENV) as $name) {
        if (strncmp($name, 'FC_', 3) === 0 && !in_array($name, FC_SAFE_ENV, true)) {
            unset($_ENV[$name]);
        }
    }
    spl_autoload_register('ServerlessFC\\autoload');
    // Warnings and notices (levels up to E_STRICT, FC's rule) become ErrorException; @-silenced ones stay silent.
    // E_DEPRECATED (8192, PHP 8.2 has many) is above the rule and only logged, as on FC.
    set_error_handler(function ($errno, $errstr, $errfile, $errline) {
        if ($errno > E_STRICT || !(error_reporting() & $errno)) {
            return false;
        }
        throw new \ErrorException($errstr, 0, $errno, $errfile, $errline);
    });
}

function autoload($class)
{
    if (strncmp($class, 'RingCentral\\Psr7\\', 17) === 0) {
        $file = SHIM_DIR . '/' . str_replace('\\', '/', $class) . '.php';
        if (is_file($file)) {
            require $file;
            return;
        }
        // The rest of ringcentral/psr7's classes: guzzlehttp/psr7's of the same name.
        $guzzle = 'GuzzleHttp\\Psr7\\' . substr($class, 17);
        if (class_exists($guzzle) || interface_exists($guzzle)) {
            class_alias($guzzle, $class);
        }
        return;
    }
    foreach (DEBIAN_NAMESPACES as $prefix) {
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = '/usr/share/php/' . str_replace('\\', '/', $class) . '.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
}

/** One request from `/next`: [ok, reply headers, reply body]. */
function serve(array $h, $event)
{
    $type = isset($h['x-fc-function-type']) ? $h['x-fc-function-type'] : HANDLE_FUNCTION;
    $requestId = isset($h['x-fc-request-id']) ? $h['x-fc-request-id'] : '';
    State::$requestId = $requestId;
    switch ($type) {
        case INIT_FUNCTION:
            list($kind, $name) = array('Initialize', fc_header($h, 'x-fc-function-initializer', getenv('FC_FUNCTION_INITIALIZER') ?: ''));
            break;
        case PRESTOP_FUNCTION:
            list($kind, $name) = array('PreStop', fc_header($h, 'x-fc-instance-lifecycle-pre-stop-handler', ''));
            break;
        case PREFREEZE_FUNCTION:
            // Not a PHP hook on FC; openfc never freezes instances anyway.
            return array(true, array(), '');
        default:
            list($kind, $name) = array('Invoke', fc_header($h, 'x-fc-function-handler', getenv('FC_FUNCTION_HANDLER') ?: ''));
    }
    logger();
    fwrite(STDOUT, "FC $kind Start RequestId: $requestId\n");
    try {
        $context = context($h);
        $function = load_function($name);
        if ($kind !== 'Invoke') {
            $function($context);
            return array(true, array(), '');
        }
        if (isset($h['x-fc-http-params'])) {
            return http_invoke($function, $h, $event, $context);
        }
        $result = $function($event, $context);
        return array(true, array(), is_string($result) ? $result : encode($result));
    } catch (\Throwable $e) {
        return array(false, array(), error_body($e, $requestId));
    } finally {
        fwrite(STDOUT, "FC $kind End RequestId: $requestId\n");
        State::$requestId = '';
    }
}

function fc_header(array $h, $name, $default)
{
    return isset($h[$name]) && $h[$name] !== '' ? $h[$name] : $default;
}

function encode($value)
{
    $json = json_encode($value, JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE);
    return $json === false ? 'null' : $json;
}

/** FC's `$context` array (runtimes.md §5.1). */
function context(array $h)
{
    $s = function ($name) use ($h) {
        return isset($h[$name]) ? $h[$name] : '';
    };
    $baggages = array();
    if ($s('x-fc-tracing-opentracing-span-baggages') !== '') {
        $decoded = json_decode((string) base64_decode($s('x-fc-tracing-opentracing-span-baggages')), true);
        $baggages = is_array($decoded) ? $decoded : array();
    }
    return array(
        'requestId' => $s('x-fc-request-id'),
        'credentials' => array(
            'accessKeyId' => $s('x-fc-access-key-id'),
            'accessKeySecret' => $s('x-fc-access-key-secret'),
            'securityToken' => $s('x-fc-security-token'),
        ),
        'function' => array(
            'name' => $s('x-fc-function-name'),
            'handler' => $s('x-fc-function-handler'),
            'memory' => (int) $s('x-fc-function-memory'),
            'timeout' => (int) $s('x-fc-function-timeout'),
            'initializer' => $s('x-fc-function-initializer'),
            'initializationTimeout' => (int) $s('x-fc-initialization-timeout'),
        ),
        'service' => array(
            'name' => $s('x-fc-service-name'),
            'logProject' => $s('x-fc-service-logproject'),
            'logStore' => $s('x-fc-service-logstore'),
            'qualifier' => $s('x-fc-qualifier'),
            'versionId' => $s('x-fc-version-id'),
        ),
        'region' => $s('x-fc-region'),
        'accountId' => $s('x-fc-account-id'),
        'tracing' => array(
            'openTracingSpanContext' => $s('x-fc-tracing-opentracing-span-context'),
            'jaegerEndpoint' => $s('x-fc-tracing-jaeger-endpoint'),
            'openTracingSpanBaggages' => $baggages,
        ),
        'retryCount' => (int) $s('x-fc-retry-count'),
    );
}

/** A load failure that is the platform's, not the user code's: reported with the handler as its place. */
final class LoadError extends \Exception
{
}

/** `index.handler` → function `handler` of /code/index.php; `a.b.handler` → /code/a/b.php (FC's get_module_path). */
function load_function($handler)
{
    $dot = strrpos($handler, '.');
    if ($dot === false || $dot === 0 || $dot === strlen($handler) - 1) {
        throw new LoadError("Invalid handler '$handler'");
    }
    $code = rtrim(getenv('FC_FUNC_CODE_PATH') ?: '/code', '/');
    $path = $code . '/' . str_replace('.', '/', substr($handler, 0, $dot)) . '.php';
    $name = substr($handler, $dot + 1);
    if (!isset(State::$loaded[$path])) {
        if (!is_file($path)) {
            throw new LoadError("Module '$path' is missing.");
        }
        State::$loaded[$path] = true;
        include_module($path);
    }
    if (!function_exists($name)) {
        throw new LoadError("function $name not found");
    }
    return $name;
}

/** Includes a user file and makes its top-level variables globals, as FC does (key by key: PHP 8.1 forbids
 * writing $GLOBALS as a whole). */
function include_module($__fc_module_path)
{
    include_once $__fc_module_path;
    foreach (get_defined_vars() as $__fc_name => $__fc_value) {
        if ($__fc_name !== '__fc_module_path') {
            $GLOBALS[$__fc_name] = $__fc_value;
        }
    }
}

/** `$GLOBALS['fcLogger']`: FC's FcLogger, a Monolog logger that writes `<time> <requestId> [LEVEL] message`. */
function logger()
{
    if (isset($GLOBALS['fcLogger'])) {
        return;
    }
    if (class_exists('Monolog\\Logger')) {
        require_once SHIM_DIR . '/logger.php';
        $GLOBALS['fcLogger'] = monolog_logger();
    } else {
        $GLOBALS['fcLogger'] = new PlainLogger();
    }
}

/** Without Debian's php-monolog: the same lines and the logger methods user code calls. */
final class PlainLogger
{
    private static $levels = array('DEBUG' => 100, 'INFO' => 200, 'NOTICE' => 250, 'WARNING' => 300, 'ERROR' => 400,
        'CRITICAL' => 500, 'ALERT' => 550, 'EMERGENCY' => 600);
    private $level = 200;

    public function setLevel($level)
    {
        $this->level = is_int($level) ? $level : (isset(self::$levels[strtoupper($level)]) ? self::$levels[strtoupper($level)] : 200);
    }

    public function log($level, $message, array $context = array())
    {
        $name = is_int($level) ? (array_search($level, self::$levels, true) ?: 'INFO') : strtoupper($level);
        if ((isset(self::$levels[$name]) ? self::$levels[$name] : 200) >= $this->level) {
            echo gmdate('Y-m-d\TH:i:s\Z') . ' ' . State::$requestId . " [$name] $message\n";
        }
    }

    public function __call($method, $args)
    {
        $this->log($method, isset($args[0]) ? (string) $args[0] : '', isset($args[1]) ? (array) $args[1] : array());
    }
}

/** FC's error body for a PHP failure (runtimes.md §2.3), also written to the log. */
function error_body(\Throwable $e, $requestId)
{
    $frames = array();
    if (!$e instanceof LoadError) {
        // The trace up to the runtime's own frame (what the user's code called), without the frame of the
        // runtime's error handler that turned a warning into this exception.
        foreach (explode("\n", $e->getTraceAsString()) as $line) {
            if (strpos($line, SHIM_DIR . '/') !== false || preg_match('/^#\d+ \{main\}$/', $line)) {
                break;
            }
            if (strpos($line, 'ServerlessFC\\{closure}') === false) {
                $frames[] = $line;
            }
        }
    }
    $body = array(
        'errorMessage' => $e->getMessage(),
        'errorType' => get_class($e),
        'stackTrace' => array(
            'file' => $e instanceof LoadError ? '' : $e->getFile(),
            'line' => $e instanceof LoadError ? 0 : $e->getLine(),
            'traceString' => implode("\n", $frames),
        ),
    );
    if ($e instanceof LoadError) {
        $body['errorType'] = 'Exception';
    }
    echo gmdate('Y-m-d\TH:i:s\Z') . " $requestId [ERROR] " . $body['errorType'] . ': ' . $e->getMessage()
        . ($e instanceof LoadError ? '' : ' in ' . $e->getFile() . ':' . $e->getLine()) . "\n";
    return json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE);
}

/** An HTTP-trigger request: `x-fc-http-params` in, a PSR-7 request to the handler, its response back as
 * `x-fc-http-params` (status, headers) and the body. */
function http_invoke($function, array $h, $body, array $context)
{
    $params = json_decode((string) base64_decode($h['x-fc-http-params']), true);
    if (!is_array($params)) {
        throw new \RuntimeException('x-fc-http-params is not base64 JSON');
    }
    $method = isset($params['method']) ? $params['method'] : 'GET';
    $path = isset($params['path']) ? $params['path'] : '/';
    $requestUri = isset($params['requestURI']) ? $params['requestURI'] : $path;
    $clientIp = isset($params['clientIP']) ? $params['clientIP'] : '';
    $headers = isset($params['headersMap']) && is_array($params['headersMap']) ? $params['headersMap'] : array();
    $queries = array();
    foreach ((isset($params['queriesMap']) && is_array($params['queriesMap']) ? $params['queriesMap'] : array()) as $k => $v) {
        $queries[$k] = is_array($v) && count($v) === 1 ? $v[0] : $v;
    }
    $query = (string) parse_url($requestUri, PHP_URL_QUERY);
    $host = $context['accountId'] . '.' . $context['region'] . '.fc.aliyuncs.com';
    $server = array(
        'REQUEST_METHOD' => $method,
        'QUERY_STRING' => $query,
        'REQUEST_URI' => $requestUri,
        'REMOTE_ADDR' => $clientIp,
        'HTTP_HOST' => isset($params['host']) ? $params['host'] : $host,
    );
    foreach ($headers as $name => $values) {
        $server['HTTP_' . strtoupper(str_replace('-', '_', $name))] = implode(', ', (array) $values);
    }
    $request = new \GuzzleHttp\Psr7\ServerRequest($method, 'http://' . $host . $requestUri, $headers, $body, '1.1', $server);
    $request = $request->withQueryParams($queries)
        ->withAttribute('path', $path)
        ->withAttribute('requestURI', $requestUri)
        ->withAttribute('clientIP', $clientIp);
    $contentType = $request->getHeaderLine('Content-Type');
    if (stripos($contentType, 'application/x-www-form-urlencoded') === 0) {
        parse_str($body, $form);
        $request = $request->withParsedBody($form);
    }
    $response = $function($request, $context);
    if (!$response instanceof \Psr\Http\Message\ResponseInterface) {
        throw new \UnexpectedValueException('an HTTP handler must return a RingCentral\\Psr7\\Response (got '
            . (is_object($response) ? get_class($response) : gettype($response)) . ')');
    }
    $status = $response->getStatusCode();
    $outHeaders = $response->getHeaders();
    if (!$response->hasHeader('X-Powered-By')) {
        $outHeaders['X-Powered-By'] = array('fc/php-runtime');
    }
    $noBody = $method === 'HEAD' || $status < 200 || $status === 204 || $status === 304;
    $out = $noBody ? '' : (string) $response->getBody();
    $reply = base64_encode(json_encode(array('status' => $status, 'headersMap' => $outHeaders), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE));
    return array(true, array('x-fc-http-params' => $reply), $out);
}
