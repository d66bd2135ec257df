<?php
/**
 * A self-contained RoadRunner jobs worker (PHP 8.2 CLI, no composer): it speaks goridge v3 frames
 * over stdin/stdout. Used by the example .rr.yaml and by the integration tests.
 *
 * The job body is JSON telling the worker what to do (anything else is acked):
 *   {"action": "ack"}                                    reply ACK
 *   {"action": "nack"}                                   reply NACK (not requeued: the job fails)
 *   {"action": "nack_requeue", "delay": 2}               reply NACK with requeue after delay seconds
 *   {"action": "requeue", "delay": 1, "headers": {"k": ["v"]}}   reply REQUEUE with headers
 *   {"action": "requeue_until", "header": "x"}           REQUEUE adding header x=1 unless the job has x; then ACK
 *   {"action": "fail"}                                   reply with an error frame (RoadRunner calls Nack)
 *   {"action": "fail_until", "attempt": 3}               error frame while the "attempts" header is below 3; then ACK
 *   {"action": "crash"}                                  exit(1) without replying (RoadRunner calls Nack)
 *   "sleep_ms": N (any action)                           sleep N ms before acting
 *
 * Every job received is appended as one JSON line to the file named by $RR_TEST_OUT (if set), before
 * the reply: {"id","job","pipeline","queue","driver","headers","payload","action","pid","ts_ms"}.
 * Nothing but frames may go to stdout: logs go to stderr.
 */

declare(strict_types=1);

const FLAG_CONTROL = 0x01;
const FLAG_CODEC_RAW = 0x04;
const FLAG_CODEC_JSON = 0x08;
const FLAG_ERROR = 0x40;

$in = STDIN;
$out = STDOUT;
$log = getenv('RR_TEST_OUT') ?: '';
$verbose = getenv('RR_WORKER_VERBOSE') === '1';

function read_exact($stream, int $n): string
{
    $buf = '';
    while (strlen($buf) < $n) {
        $chunk = fread($stream, $n - strlen($buf));
        if ($chunk === false || $chunk === '') {
            exit(0); // RoadRunner closed the pipe
        }
        $buf .= $chunk;
    }
    return $buf;
}

/** @return array{0:int,1:array<int>,2:string} flags, options, payload */
function read_frame($stream): array
{
    $h = read_exact($stream, 12);
    $hl = ord($h[0]) & 0x0F;
    $flags = ord($h[1]);
    $len = unpack('V', substr($h, 2, 4))[1];
    if (unpack('V', substr($h, 6, 4))[1] !== crc32(substr($h, 0, 6))) {
        fwrite(STDERR, "worker: frame CRC mismatch\n");
        exit(2);
    }
    $options = $hl > 3 ? array_values(unpack('V*', read_exact($stream, ($hl - 3) * 4))) : [];
    return [$flags, $options, $len > 0 ? read_exact($stream, $len) : ''];
}

function write_frame($stream, int $flags, array $options, string $payload): void
{
    $hl = 3 + count($options);
    $head = pack('CCV', 0x10 | $hl, $flags, strlen($payload));
    $head .= pack('V', crc32($head)) . "\x00\x00";
    foreach ($options as $o) {
        $head .= pack('V', $o);
    }
    fwrite($stream, $head . $payload);
    fflush($stream);
}

function record(string $file, array $entry): void
{
    if ($file === '') {
        return;
    }
    $fh = fopen($file, 'ab');
    flock($fh, LOCK_EX);
    fwrite($fh, json_encode($entry, JSON_UNESCAPED_SLASHES) . "\n");
    fflush($fh);
    flock($fh, LOCK_UN);
    fclose($fh);
}

function reply($out, int $type, array $data = []): void
{
    write_frame($out, FLAG_CODEC_RAW, [0], json_encode(['type' => $type, 'data' => (object)$data]));
}

while (true) {
    [$flags, $options, $payload] = read_frame($in);

    if ($flags & FLAG_CONTROL) {
        $cmd = json_decode($payload, true) ?: [];
        if (!empty($cmd['stop'])) {
            exit(0);
        }
        if (array_key_exists('pid', $cmd)) {
            write_frame($out, FLAG_CONTROL | FLAG_CODEC_JSON, [], json_encode(['pid' => getmypid()]));
        }
        continue;
    }

    $ctxLen = $options[0] ?? 0;
    $ctx = json_decode(substr($payload, 0, $ctxLen), true) ?: [];
    $body = substr($payload, $ctxLen);
    $task = json_decode($body, true);
    if (!is_array($task)) {
        $task = ['action' => 'ack'];
    }
    $action = $task['action'] ?? 'ack';
    $headers = $ctx['headers'] ?? [];

    record($log, [
        'id' => $ctx['id'] ?? '',
        'job' => $ctx['job'] ?? '',
        'pipeline' => $ctx['pipeline'] ?? '',
        'queue' => $ctx['queue'] ?? '',
        'driver' => $ctx['driver'] ?? '',
        'headers' => (object)$headers,
        'payload' => $body,
        'action' => $action,
        'pid' => getmypid(),
        'ts_ms' => (int)floor(microtime(true) * 1000),
    ]);
    if ($verbose) {
        fwrite(STDERR, sprintf("worker %d: %s job %s (%s) from %s\n", getmypid(), $action, $ctx['id'] ?? '?', $ctx['job'] ?? '?', $ctx['pipeline'] ?? '?'));
    }

    if (!empty($task['sleep_ms'])) {
        usleep((int)$task['sleep_ms'] * 1000);
    }

    $attempt = (int)($headers['attempts'][0] ?? 1);
    switch ($action) {
        case 'nack':
            reply($out, 3, ['message' => 'rejected by the test', 'requeue' => false]);
            break;
        case 'nack_requeue':
            reply($out, 3, ['message' => 'retry later', 'requeue' => true, 'delay_seconds' => (int)($task['delay'] ?? 0)]);
            break;
        case 'requeue':
            reply($out, 4, ['delay_seconds' => (int)($task['delay'] ?? 0), 'headers' => (object)($task['headers'] ?? [])]);
            break;
        case 'requeue_until':
            $h = $task['header'] ?? 'requeued';
            if (isset($headers[$h])) {
                reply($out, 2);
            } else {
                reply($out, 4, ['delay_seconds' => (int)($task['delay'] ?? 0), 'headers' => [$h => ['1']]]);
            }
            break;
        case 'fail':
            write_frame($out, FLAG_ERROR | FLAG_CODEC_RAW, [0], 'the test job failed');
            break;
        case 'fail_until':
            if ($attempt < (int)($task['attempt'] ?? 2)) {
                write_frame($out, FLAG_ERROR | FLAG_CODEC_RAW, [0], "failing attempt $attempt");
            } else {
                reply($out, 2);
            }
            break;
        case 'crash':
            exit(1);
        default:
            reply($out, 2);
    }
}
