<?php
// PHP's own sessions ($_SESSION, the files handler), set up the same way for the site
// (router.php) and for the lookup (lookup.php), which reads the session files itself.
declare(strict_types=1);

$dir = getenv('SESSION_DIR') ?: sys_get_temp_dir() . '/edgesite-sessions';
if (!is_dir($dir)) {
    @mkdir($dir, 0700, true); // (when it cannot be made, the lookup answers 503)
}
ini_set('session.save_handler', 'files');
ini_set('session.save_path', $dir);
// Each file holds serialize($_SESSION), which the lookup reads with unserialize().
ini_set('session.serialize_handler', 'php_serialize');
ini_set('session.use_strict_mode', '1');  // never adopt a session ID the site did not create
ini_set('session.use_only_cookies', '1');
ini_set('session.gc_maxlifetime', '1800'); // idle sessions are removed after 30 minutes...
ini_set('session.gc_probability', '1');    // ...by PHP's own collector (Debian's php.ini leaves it to a cron job)
ini_set('session.gc_divisor', '100');
session_name('PHPSESSID'); // the worker's SESSION_COOKIE
session_set_cookie_params([
    'path' => '/',
    'httponly' => true,
    'samesite' => 'Lax',
    'secure' => getenv('COOKIE_SECURE') === '1',
]);

// Every character PHP may put in a session ID (session.sid_bits_per_character 4, 5 or 6),
// at the lengths session.sid_length allows: anything else is no session of ours, and
// never becomes part of a file name.
const SESSION_ID = '/^[0-9a-zA-Z,-]{22,256}$/D';

/**
 * The data of session $id as the files handler keeps it, or null when there is no such
 * session. Opens the file read-only (so it never creates one), under the shared lock, so
 * a request writing the session is waited for. Throws when the store cannot be read.
 */
function read_session(string $id): ?array
{
    if (!preg_match(SESSION_ID, $id)) {
        return null;
    }
    $dir = ini_get('session.save_path');
    $file = "$dir/sess_$id";
    $f = @fopen($file, 'rb');
    if ($f === false) {
        if (!is_dir($dir) || file_exists($file)) {
            throw new RuntimeException("cannot read the session store ($dir)");
        }
        return null;
    }
    try {
        if (!flock($f, LOCK_SH)) {
            throw new RuntimeException('cannot lock the session file');
        }
        $raw = stream_get_contents($f);
    } finally {
        fclose($f);
    }
    if ($raw === false) {
        throw new RuntimeException('cannot read the session file');
    }
    $data = $raw === '' ? [] : @unserialize($raw, ['allowed_classes' => false]);
    return is_array($data) ? $data : null;
}
