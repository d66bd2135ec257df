<?php
/**
 * Pushes jobs to a running rr through the jobs RPC, without composer: a minimal goridge RPC
 * client using the JSON codec. In an application use spiral/roadrunner-jobs instead (README).
 *
 *   php examples/push.php [count] [pipeline] [rpc address]
 *   php examples/push.php 20 emails tcp://127.0.0.1:6001
 *
 * Each job's payload is {"action":"ack"}: the example worker (tests/php/worker.php) acks it.
 */

declare(strict_types=1);

final class GoridgeRpc
{
    private const CODEC_JSON = 0x08;
    /** @var resource */
    private $socket;
    private int $seq = 0;

    public function __construct(string $address)
    {
        $address = preg_replace('#^tcp://#', '', $address);
        $socket = @stream_socket_client('tcp://' . $address, $errno, $error, 5.0);
        if ($socket === false) {
            throw new RuntimeException("cannot connect to rr RPC at $address: $error (is `rr serve` running?)");
        }
        $this->socket = $socket;
    }

    /** Calls Service.Method with a JSON-encodable argument and returns the decoded JSON answer. */
    public function call(string $method, mixed $payload): mixed
    {
        $seq = ++$this->seq;
        $body = $method . json_encode($payload, JSON_THROW_ON_ERROR);
        $this->send(self::CODEC_JSON, [$seq, strlen($method)], $body);
        [$flags, $options, $answer] = $this->receive();
        if ($options[0] !== $seq) {
            throw new RuntimeException("rpc: answer for call $options[0], expected $seq");
        }
        $result = substr($answer, $options[1]);
        if ($flags & 0x40) { // ERROR
            throw new RuntimeException("rpc $method: $result");
        }
        return json_decode($result, true, 512, JSON_THROW_ON_ERROR);
    }

    private function send(int $flags, array $options, string $payload): void
    {
        $hl = 3 + count($options);
        $header = pack('CCV', 0x10 | $hl, $flags, strlen($payload));
        $header .= pack('V', crc32($header)) . "\x00\x00";
        foreach ($options as $o) {
            $header .= pack('V', $o);
        }
        fwrite($this->socket, $header . $payload);
    }

    private function receive(): array
    {
        $head = $this->read(12);
        $hl = ord($head[0]) & 0x0F;
        $flags = ord($head[1]);
        $len = unpack('V', substr($head, 2, 4))[1];
        if (unpack('V', substr($head, 6, 4))[1] !== crc32(substr($head, 0, 6))) {
            throw new RuntimeException('rpc: frame CRC mismatch');
        }
        $options = $hl > 3 ? array_values(unpack('V*', $this->read(($hl - 3) * 4))) : [];
        return [$flags, $options, $len > 0 ? $this->read($len) : ''];
    }

    private function read(int $n): string
    {
        $buf = '';
        while (strlen($buf) < $n) {
            $chunk = fread($this->socket, $n - strlen($buf));
            if ($chunk === false || $chunk === '') {
                throw new RuntimeException('rpc: connection closed');
            }
            $buf .= $chunk;
        }
        return $buf;
    }
}

$count = (int)($argv[1] ?? 10);
$pipeline = $argv[2] ?? 'emails';
$rpc = new GoridgeRpc($argv[3] ?? (getenv('RR_RPC') ?: '127.0.0.1:6001'));

// rr answers RPC a moment before the jobs plugin has built its pipelines' drivers: wait for ours.
$deadline = microtime(true) + 15;
while (!in_array($pipeline, array_column($rpc->call('jobs.Stat', new stdClass())['stats'] ?? [], 'pipeline'), true)) {
    if (microtime(true) > $deadline) {
        throw new RuntimeException("pipeline $pipeline does not exist in rr");
    }
    usleep(100_000);
}

for ($i = 1; $i <= $count; $i++) {
    $id = sprintf('demo-%s-%d', bin2hex(random_bytes(4)), $i);
    $rpc->call('jobs.Push', ['job' => [
        'job' => 'App\\Jobs\\SendEmail',
        'id' => $id,
        'payload' => base64_encode(json_encode(['action' => 'ack', 'n' => $i])),
        'headers' => ['x-demo' => ['value' => ['yes']]],
        'options' => ['pipeline' => $pipeline],
    ]]);
}
fwrite(STDERR, "pushed $count jobs to pipeline $pipeline\n");

$stats = $rpc->call('jobs.Stat', new stdClass());
foreach ($stats['stats'] ?? [] as $s) {
    fwrite(STDERR, sprintf("%-10s driver=%s ready=%s active=%d delayed=%d reserved=%d\n",
        $s['pipeline'], $s['driver'], json_encode($s['ready'] ?? false), $s['active'] ?? 0, $s['delayed'] ?? 0, $s['reserved'] ?? 0));
}
