<?php
// The lookup edge-session asks (docs/ATTACH.md, "Attach mode in four steps"): POST,
// Authorization: Bearer <token>, body {"session_id":"<the raw value of the session cookie>"}.
// It answers 200 {"user","claims","created"} for a signed-in session, 404 for any other,
// 401 for a wrong token, 400 for a bad body and 503 when the store cannot be read.
declare(strict_types=1);
require_once __DIR__ . '/session.php';

function answer(int $status, array $body): never
{
    http_response_code($status);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    echo json_encode($body, JSON_UNESCAPED_SLASHES);
    exit;
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    answer(405, ['error' => 'method_not_allowed']);
}
$token = getenv('EDGE_LOOKUP_TOKEN');
if (!is_string($token) || $token === '' || !hash_equals("Bearer $token", $_SERVER['HTTP_AUTHORIZATION'] ?? '')) {
    answer(401, ['error' => 'unauthorized']);
}
$body = file_get_contents('php://input', false, null, 0, 8193);
$ask = is_string($body) && strlen($body) <= 8192 ? json_decode($body, true) : null;
$id = is_array($ask) ? ($ask['session_id'] ?? null) : null;
if (!is_string($id) || $id === '') {
    answer(400, ['error' => 'bad_request']);
}
try {
    $session = read_session($id); // null for an ID outside PHP's alphabet, unknown or collected
} catch (RuntimeException $e) {
    error_log('edge-session lookup: ' . $e->getMessage());
    answer(503, ['error' => 'store_unavailable']); // not 404: that would sign the user out
}
$user = $session['user'] ?? null;
if (!is_string($user) || $user === '') {
    answer(404, ['error' => 'not_found']);
}
answer(200, array_filter(
    ['user' => $user, 'claims' => ($session['claims'] ?? []) ?: null, 'created' => $session['created'] ?? null],
    fn ($v) => $v !== null,
));
