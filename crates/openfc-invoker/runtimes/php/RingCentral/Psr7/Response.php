<?php
namespace RingCentral\Psr7;

/**
 * FC's PHP runtime ships ringcentral/psr7 (1.3.0), and HTTP functions return its Response without bundling it.
 * Packagist cannot be reached here, so openfc provides the class on Debian's guzzlehttp/psr7 2.x, whose
 * constructor takes the same arguments in the same order (status, headers, body, version, reason); the
 * arguments are converted to the types 2.x declares, as 1.3.0 accepted them untyped.
 */
class Response extends \GuzzleHttp\Psr7\Response
{
    public function __construct($status = 200, array $headers = array(), $body = null, $version = '1.1', $reason = null)
    {
        parent::__construct((int) $status, $headers, $body, (string) $version, $reason === null ? null : (string) $reason);
    }
}
