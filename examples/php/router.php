<?php
// A small plain-PHP site (PHP 8.2, no framework, no Composer) that keeps its own sessions
// with $_SESSION, attached to edge-session (attach mode): the worker learns each session
// from the lookup endpoint (lookup.php), and sees the site's logout in the cleared cookie.
//
//   SESSION_DIR=/var/lib/edgesite/sessions EDGE_LOOKUP_TOKEN=... php -S 127.0.0.1:8000 router.php
//
// It reads the identity from the worker's X-Session-User and X-Session-Claims headers.
// The worker removes those headers from what browsers send, but not from a request that
// skips the worker: run this only where nothing else can reach the site, or verify
// X-Session-Assertion (README.md, "Trusting the worker at your origin") with a JWT library.
declare(strict_types=1);
require __DIR__ . '/session.php';

const USERS = [
    'alice' => ['password' => 'wonderland', 'claims' => ['name' => 'Alice', 'role' => 'admin']],
    'bob' => ['password' => 'builder', 'claims' => ['name' => 'Bob', 'role' => 'user']],
];

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_HTML5, 'UTF-8');
}

function page(string $title, string $body, int $status = 200): void
{
    http_response_code($status);
    header('Content-Type: text/html; charset=utf-8');
    echo '<!doctype html><meta charset="utf-8"><title>' . h($title) . '</title><h1>' . h($title) . "</h1>\n$body";
}

function json(array $body, int $status = 200): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_SLASHES);
}

function see_other(string $to): void
{
    http_response_code(303);
    header("Location: $to");
}

function local_path(mixed $p): ?string
{
    return is_string($p) && preg_match('#^/(?![/\\\\])#', $p) ? $p : null;
}

/** The user the worker vouches for, from its identity headers (null on a public path). */
function edge_identity(): ?array
{
    $user = rawurldecode($_SERVER['HTTP_X_SESSION_USER'] ?? '');
    if ($user === '') {
        return null;
    }
    $claims = json_decode($_SERVER['HTTP_X_SESSION_CLAIMS'] ?? '{}'); // compact ASCII JSON, an object
    return ['user' => $user, 'claims' => is_object($claims) ? $claims : new stdClass(), 'source' => $_SERVER['HTTP_X_SESSION_SOURCE'] ?? null];
}

/** Opens the site's session only when the browser has one (no session for anonymous visitors). */
function site_session(bool $write = false): bool
{
    if (!isset($_COOKIE[session_name()])) {
        return false;
    }
    return session_start($write ? [] : ['read_and_close' => true]);
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$route = $_SERVER['REQUEST_METHOD'] . ' ' . $path;

if ($path === '/edge-session/lookup') {
    require __DIR__ . '/lookup.php';
    return;
}

switch ($route) {
    case 'GET /':
        page('PHP site', '<p><a href="/account">Your account</a> · <a href="/login">Sign in</a></p>');
        break;

    case 'GET /login':
        $back = h(local_path($_GET['return_to'] ?? null) ?? '');
        page('Sign in', "<form method=\"post\" action=\"/login\"><input name=\"username\"> <input name=\"password\" type=\"password\">
<input type=\"hidden\" name=\"return_to\" value=\"$back\"><button>Sign in</button></form>");
        break;

    case 'POST /login':
        $username = (string) ($_POST['username'] ?? '');
        $account = USERS[$username] ?? null;
        if ($account === null || !hash_equals($account['password'], (string) ($_POST['password'] ?? ''))) {
            page('Sign in', '<p>Wrong username or password.</p>', 401);
            break;
        }
        session_start();
        session_regenerate_id(true); // a fresh ID at login (no fixation): the worker sees the new cookie
        $_SESSION = [
            'user' => $username,
            'claims' => $account['claims'],
            'created' => time(), // the lookup reports it: the worker's absolute timeout counts from it
        ];
        session_write_close();
        see_other(local_path($_POST['return_to'] ?? null) ?? '/account');
        break;

    case 'POST /logout':
        if (site_session(true)) {
            $_SESSION = [];
            session_destroy();
        }
        // The cleared cookie is the worker's logout signal in attach mode.
        $params = session_get_cookie_params();
        unset($params['lifetime']);
        setcookie(session_name(), '', ['expires' => 1] + $params);
        see_other('/');
        break;

    case 'GET /account':
        $me = edge_identity() ?? ['user' => '?', 'source' => '?'];
        page('Your account', '<p>Signed in as <b>' . h($me['user']) . '</b> (vouched for by ' . h((string) $me['source']) . ').</p>
<form method="post" action="/logout"><button>Sign out</button></form>
<form method="post" action="/account/sign-out-other-devices"><button>Sign out other devices</button></form>');
        break;

    case 'GET /api/whoami':
        $me = edge_identity();
        if ($me === null) {
            json(['error' => 'no_identity'], 401);
            break;
        }
        site_session();
        json($me + ['site_session_user' => $_SESSION['user'] ?? null]);
        break;

    // Ends the user's sessions on other devices, on the site only: the worker finds out at
    // its next lookup (REVALIDATE_AFTER), as it would for any session the site ends.
    case 'POST /account/sign-out-other-devices':
        site_session();
        $user = $_SESSION['user'] ?? null;
        if ($user === null) {
            json(['error' => 'no_site_session'], 409);
            break;
        }
        $ended = 0;
        foreach (glob(ini_get('session.save_path') . '/sess_*') ?: [] as $file) {
            $id = substr(basename($file), 5);
            if ($id !== session_id() && (read_session($id)['user'] ?? null) === $user && @unlink($file)) {
                $ended++;
            }
        }
        json(['ended' => $ended]);
        break;

    default:
        page('Not found', '<p>No such page.</p>', 404);
}
