<?php
/**
 * Pushes batches to sql.PushBatch with the real spiral/roadrunner-jobs client ($RR_PHP_CLIENT):
 *
 *  1. the client's own batch: Queue::dispatchMany builds the PushBatchRequest of jobs.PushBatch
 *     (uuid ids, options, headers) and sends it with goridge's ProtobufCodec; an RPC that sends
 *     jobs.PushBatch to sql.PushBatch instead makes it one commit;
 *  2. a PushBatchRequest built from the client's protobuf classes, sent to sql.PushBatch;
 *  3. a batch naming a pipeline that is not an sql pipeline: refused, its error caught.
 *
 * Usage: php push_batch.php RPC_ADDRESS PIPELINE COUNT. Prints {"dispatched":[ids],"built":[ids],"error":"..."}.
 */

declare(strict_types=1);

require getenv('RR_PHP_CLIENT') . '/autoload.php';

use RoadRunner\Jobs\DTO\V1\HeaderValue;
use RoadRunner\Jobs\DTO\V1\Job;
use RoadRunner\Jobs\DTO\V1\Options as OptionsMessage;
use RoadRunner\Jobs\DTO\V1\PushBatchRequest;
use Spiral\Goridge\RPC\CodecInterface;
use Spiral\Goridge\RPC\Codec\ProtobufCodec;
use Spiral\Goridge\RPC\RPC;
use Spiral\Goridge\RPC\RPCInterface;
use Spiral\RoadRunner\Jobs\Exception\JobsException;
use Spiral\RoadRunner\Jobs\Jobs;

/** Sends the jobs client's batches (jobs.PushBatch) to sql.PushBatch: one commit per batch. */
final class SqlBatchRPC implements RPCInterface
{
    public function __construct(private readonly RPCInterface $rpc)
    {
    }

    public function withServicePrefix(string $service): self
    {
        return new self($this->rpc->withServicePrefix($service));
    }

    public function withCodec(CodecInterface $codec): self
    {
        return new self($this->rpc->withCodec($codec));
    }

    public function call(string $method, mixed $payload, mixed $options = null): mixed
    {
        return $this->rpc->call($method === 'jobs.PushBatch' ? 'sql.PushBatch' : $method, $payload, $options);
    }
}

[, $address, $pipeline, $count] = $argv;
$rpc = RPC::create($address);

// 1. The client's own request.
$queue = (new Jobs(new SqlBatchRPC($rpc)))->connect($pipeline);
$tasks = [];
for ($i = 0; $i < (int)$count; $i++) {
    $tasks[] = $queue->create('App\\Jobs\\Report', json_encode(['action' => 'ack', 'n' => $i]))
        ->withHeader('x-from', 'dispatchMany')
        ->withPriority(1 + $i % 3)
        ->withDelay($i % 10 === 0 ? 1 : 0);
}
$dispatched = [];
foreach ($queue->dispatchMany(...$tasks) as $queued) {
    $dispatched[] = $queued->getId();
}

// 2. A request built by hand from the same protobuf classes.
$built = [];
$jobs = [];
for ($i = 0; $i < (int)$count; $i++) {
    $built[] = $id = sprintf('built-%d', $i);
    $jobs[] = new Job([
        'job' => 'App\\Jobs\\Report',
        'id' => $id,
        'payload' => json_encode(['action' => 'ack']),
        'headers' => ['x-from' => new HeaderValue(['value' => ['built']])],
        'options' => new OptionsMessage(['pipeline' => $pipeline, 'priority' => 0, 'delay' => 0]),
    ]);
}
$rpc->withCodec(new ProtobufCodec())->call('sql.PushBatch', new PushBatchRequest(['jobs' => $jobs]));

// 3. Refused whole.
$error = '';
try {
    $bad = (new Jobs(new SqlBatchRPC($rpc)))->connect('no-such-pipeline');
    $bad->dispatchMany($bad->create('App\\Jobs\\Report', '{}'));
} catch (JobsException $e) {
    $error = $e->getMessage();
}

echo json_encode(['dispatched' => $dispatched, 'built' => $built, 'error' => $error]), "\n";
