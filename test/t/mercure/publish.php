<?php
// Publish one update to a Mercure hub with Symfony's Mercure component, as
// Debian packages it (php-symfony-mercure): t/71_mercure_symfony.t runs this
// so that code nobody here wrote talks to the hub.
//
//   php publish.php <hub URL> [<JWT>] < update.json
//
// The JWT is the second argument or the MERCURE_JWT environment variable.
// stdin is a JSON object: {"topics": [...], "data": "...", "private": true,
// "id": "...", "type": "...", "retry": 1500}; only topics is required.
// MERCURE_HTTP_CLIENT=native|curl picks Symfony's HTTP client (default: the
// one HttpClient::create() picks, curl when PHP has the extension).
//
// Prints the id the hub answered (Hub::publish's return), exit 0; or the
// exception's message and those of its causes on stderr, exit 1.
declare(strict_types=1);

// Debian's php packages install under /usr/share/php (on the include path)
// an autoload.php each that requires those of their dependencies.
require_once 'Symfony/Component/Mercure/autoload.php';

use Symfony\Component\HttpClient\CurlHttpClient;
use Symfony\Component\HttpClient\NativeHttpClient;
use Symfony\Component\Mercure\Hub;
use Symfony\Component\Mercure\Jwt\StaticTokenProvider;
use Symfony\Component\Mercure\Update;

if ($argc < 2) {
    fwrite(STDERR, "usage: php publish.php <hub URL> [<JWT>] < update.json\n");
    exit(2);
}
$url = $argv[1];
$jwt = $argv[2] ?? getenv('MERCURE_JWT');
if (!is_string($jwt) || $jwt === '') {
    fwrite(STDERR, "publish.php: no JWT (second argument or MERCURE_JWT)\n");
    exit(2);
}
$u = json_decode((string) stream_get_contents(STDIN), true);
if (!is_array($u) || !isset($u['topics'])) {
    fwrite(STDERR, "publish.php: stdin is not a JSON object with topics\n");
    exit(2);
}

$client = null;
switch (getenv('MERCURE_HTTP_CLIENT') ?: '') {
    case 'native': $client = new NativeHttpClient(); break;
    case 'curl':   $client = new CurlHttpClient(); break;
}

try {
    $hub = new Hub($url, new StaticTokenProvider($jwt), null, null, $client);
    $update = new Update(
        $u['topics'],
        $u['data'] ?? '',
        (bool) ($u['private'] ?? false),
        $u['id'] ?? null,
        $u['type'] ?? null,
        isset($u['retry']) ? (int) $u['retry'] : null
    );
    echo $hub->publish($update);
    exit(0);
} catch (\Throwable $e) {
    $msg = get_class($e) . ': ' . $e->getMessage();
    for ($p = $e->getPrevious(); $p !== null; $p = $p->getPrevious()) {
        $msg .= ' <- ' . get_class($p) . ': ' . $p->getMessage();
    }
    fwrite(STDERR, $msg . "\n");
    exit(1);
}
