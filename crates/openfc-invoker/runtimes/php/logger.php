<?php
/**
 * FC's FcLogger on Debian's Monolog 2 (php-monolog): loaded only when Monolog is installed, so that the class
 * can extend it. One handler writing to php://output (in order with `echo`) at INFO, in FC's line format
 * `2024-03-04T09:57:28Z <requestId> [INFO] message`.
 */

namespace ServerlessFC;

class FcLogger extends \Monolog\Logger
{
    /** FC's addition: the level of every handler at once. */
    public function setLevel($level)
    {
        foreach ($this->getHandlers() as $handler) {
            if (method_exists($handler, 'setLevel')) {
                $handler->setLevel($level);
            }
        }
    }
}

function monolog_logger()
{
    $logger = new FcLogger('fcLogger');
    $handler = new \Monolog\Handler\StreamHandler('php://output', \Monolog\Logger::INFO);
    $handler->setFormatter(new \Monolog\Formatter\LineFormatter("%datetime% %extra.fcRequestId% [%level_name%] %message%\n", 'Y-m-d\TH:i:s\Z', true));
    $logger->pushHandler($handler);
    $logger->pushProcessor(function ($record) {
        $record['extra']['fcRequestId'] = State::$requestId;
        return $record;
    });
    return $logger;
}
