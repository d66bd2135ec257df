<?php
/**
 * Pushes jobs with unique keys through the real spiral/roadrunner-jobs client, as an application
 * would: `withHeader('x-sql-unique-key', ...)`. A duplicate is no exception. Prints one line per
 * push: "KEY ID".
 *
 *   php unique_push.php RPC_ADDRESS PIPELINE KEY [KEY ...]
 */

declare(strict_types=1);

require getenv('RR_PHP_CLIENT') . '/autoload.php';

use Spiral\Goridge\RPC\RPC;
use Spiral\RoadRunner\Jobs\Jobs;

[, $address, $pipeline] = $argv;
$queue = (new Jobs(RPC::create($address)))->connect($pipeline);
foreach (array_slice($argv, 3) as $key) {
    $task = $queue->create('App\\Jobs\\BuildReport', payload: json_encode(['action' => 'ack', 'report' => $key]))
        ->withHeader('x-sql-unique-key', $key);
    $queued = $queue->dispatch($task);
    echo $key, ' ', $queued->getId(), "\n";
}
