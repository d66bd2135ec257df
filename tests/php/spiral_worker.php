<?php
/**
 * A jobs worker built on the real spiral/roadrunner-jobs client (Consumer, ReceivedTask), loaded from
 * $RR_PHP_CLIENT/autoload.php: what PHP applications run. It understands a subset of worker.php's
 * payload language and records each delivery to $RR_TEST_OUT in the same JSON-lines format, so the
 * Go tests read both workers alike.
 *
 *   "action"        ack (default) | nack | nack_requeue | requeue | fail (a thrown exception)
 *   "delay_seconds" delay for requeue / nack_requeue
 *   "headers"       object string => array of strings, set on the task before a requeue
 *   "message"       the nack / requeue / exception message
 *   "sleep_ms"      sleep this long before answering (the job is recorded first)
 *   "requeue_times" requeue with header "requeues" = k+1 while the task's "requeues" header k is
 *                   below it, then do "action": the way PHP code retries a job it wants to run again
 *   "first_only"    true: do "action" on the first delivery only (header x-sql-delivery = 1), ack later ones
 *
 * With $RR_TEST_END_OUT set, {"id","pid","end_ms"} is appended there when the work (the sleep) is
 * done, right before the answer.
 */

declare(strict_types=1);

require getenv('RR_PHP_CLIENT') . '/autoload.php';

use Spiral\RoadRunner\Jobs\Consumer;
use Spiral\RoadRunner\Worker;

$out = getenv('RR_TEST_OUT') ?: '';

function record(string $file, array $entry): void
{
    if ($file === '') {
        return;
    }
    $fh = fopen($file, 'ab');
    flock($fh, LOCK_EX);
    fwrite($fh, json_encode($entry, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    fflush($fh);
    flock($fh, LOCK_UN);
    fclose($fh);
}

$worker = Worker::create();
$consumer = new Consumer($worker);
while ($task = $consumer->waitTask()) {
    $spec = json_decode($task->getPayload(), true);
    if (!is_array($spec) || array_is_list($spec)) {
        $spec = [];
    }
    $action = is_string($spec['action'] ?? null) ? $spec['action'] : 'ack';
    $delay = (int)($spec['delay_seconds'] ?? 0);
    $message = is_string($spec['message'] ?? null) ? $spec['message'] : 'failed by the test payload';
    if (($spec['first_only'] ?? false) === true && (int)$task->getHeaderLine('x-sql-delivery') > 1) {
        $action = 'ack';
    }
    $requeues = (int)$task->getHeaderLine('requeues');
    if (is_int($spec['requeue_times'] ?? null) && $requeues < $spec['requeue_times']) {
        $action = 'requeue';
        $spec['headers'] = ($spec['headers'] ?? []) + ['requeues' => [(string)($requeues + 1)]];
    }

    record($out, [
        'id' => $task->getId(),
        'job' => $task->getName(),
        'pipeline' => $task->getPipeline(),
        'queue' => $task->getQueue(),
        'driver' => $task->getDriver()->value,
        'headers' => (object)$task->getHeaders(),
        'payload' => $task->getPayload(),
        'action' => $action,
        'pid' => getmypid(),
        'ts_ms' => (int)floor(microtime(true) * 1000),
    ]);
    if (($sleep = (int)($spec['sleep_ms'] ?? 0)) > 0) {
        usleep($sleep * 1000);
    }
    if (($endOut = getenv('RR_TEST_END_OUT') ?: '') !== '') {
        record($endOut, ['id' => $task->getId(), 'pid' => getmypid(), 'end_ms' => (int)floor(microtime(true) * 1000)]);
    }

    try {
        switch ($action) {
            case 'nack':
                $task->nack($message);
                break;
            case 'nack_requeue':
                $task->withDelay($delay)->nack($message, redelivery: true);
                break;
            case 'requeue':
                foreach ((array)($spec['headers'] ?? []) as $name => $values) {
                    $task = $task->withHeader((string)$name, (array)$values);
                }
                $task->withDelay($delay)->requeue($message);
                break;
            case 'fail':
                throw new RuntimeException($message);
            default:
                $task->ack();
        }
    } catch (Throwable $e) {
        // What an application's worker loop does with an exception: report it to RoadRunner as an
        // error (RoadRunner then calls the driver's Nack) and take the next task.
        $worker->error($e->getMessage());
    }
}
