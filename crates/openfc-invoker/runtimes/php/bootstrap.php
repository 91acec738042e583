<?php
/**
 * openfc's built-in PHP runtime, FC `php7.2` compatible, on Debian's PHP 8.2 CLI.
 *
 * Run as (runtime.rs, the php7.2 entry of the runtime table):
 *   php -d variables_order=EGPCS -d enable_post_data_reading=1 /var/fc/runtime/php7.2/bootstrap.php
 *
 * A client of the Runtime API 2020-11-11 that openfc serves inside the instance at FC_RUNTIME_API
 * (runtimes.md §3.2, §5): it long-polls `/next`, runs the handler, initializer or pre-stop hook the request
 * names (`x-fc-function-type` 0/1/2), and answers `/response` or `/error`. One request at a time: the runtime
 * table caps PHP instances at one request whatever `instanceConcurrency` says.
 *
 * The function sees FC's contract: `handler($event, $context)` with `$context` an array, `$GLOBALS['fcLogger']`
 * (a Monolog logger writing FC's line format), HTTP handlers receiving a PSR-7 request with the attributes
 * `path`, `requestURI` and `clientIP` and returning `RingCentral\Psr7\Response` (provided here, on Debian's
 * guzzlehttp/psr7), warnings turned into `ErrorException`, FC's error body. See runtime.php.
 */

require __DIR__ . '/runtime.php';

exit(\ServerlessFC\main());
