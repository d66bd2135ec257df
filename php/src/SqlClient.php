<?php

declare(strict_types=1);

namespace RrSql\Jobs;

use RoadRunner\Jobs\DTO\V1\HeaderValue;
use RoadRunner\Jobs\DTO\V1\Job;
use RoadRunner\Jobs\DTO\V1\Options as OptionsMessage;
use RoadRunner\Jobs\DTO\V1\PushBatchRequest;
use Spiral\Goridge\RPC\Codec\JsonCodec;
use Spiral\Goridge\RPC\Codec\ProtobufCodec;
use Spiral\Goridge\RPC\RPC;
use Spiral\Goridge\RPC\RPCInterface;
use Spiral\RoadRunner\Jobs\OptionsAwareInterface;
use Spiral\RoadRunner\Jobs\OptionsInterface;
use Spiral\RoadRunner\Jobs\QueueInterface;
use Spiral\RoadRunner\Jobs\Task\PreparedTaskInterface;
use Spiral\RoadRunner\Jobs\Task\QueuedTask;

/**
 * A typed client of the driver's `sql` RPC service: one method per `sql.*` call, answers as
 * readonly objects. Errors of the driver (an unknown pipeline, a bad header, a limit out of range)
 * are thrown as SqlJobsException with the driver's message; bad arguments caught here are thrown as
 * \InvalidArgumentException before anything is sent.
 *
 *     $sql = new SqlClient(RPC::create('tcp://127.0.0.1:6001'));
 *     $stats = $sql->stats('emails')['emails'];
 */
final class SqlClient
{
    /** The most ids one find() or cancel() takes. */
    public const MAX_IDS = 1000;

    private readonly RPCInterface $json;
    private readonly RPCInterface $proto;

    public function __construct(RPCInterface $rpc)
    {
        $this->json = $rpc->withCodec(new JsonCodec());
        $this->proto = $rpc->withCodec(new ProtobufCodec());
    }

    /**
     * @param non-empty-string $address rpc.listen of .rr.yaml
     */
    public static function create(string $address = 'tcp://127.0.0.1:6001'): self
    {
        return new self(RPC::create($address));
    }

    /**
     * sql.Stats: per pipeline, its ready, delayed, reserved and failed jobs and the oldest ready
     * job's age. No names: every sql pipeline of the rr node answering.
     *
     * @return array<string, PipelineStats> by pipeline name, in name order
     */
    public function stats(string ...$pipelines): array
    {
        $out = [];
        foreach ($this->list($this->call('sql.Stats', ['pipelines' => \array_values($pipelines)]), 'stats') as $s) {
            $stats = PipelineStats::fromArray($s);
            $out[$stats->pipeline] = $stats;
        }
        return $out;
    }

    /**
     * sql.Groups: a page of a pipeline's jobs counted per first value of a header, in value order.
     * Without a header, a group_by pipeline's groups.
     *
     * @param string $after the last value of the previous page ("" for the first: $page->nextAfter)
     * @param int $limit the page size, 1 to 1000
     */
    public function groups(string $pipeline, string $header = '', string $after = '', int $limit = 100): GroupPage
    {
        self::pageSize($limit);
        return GroupPage::fromArray($this->call('sql.Groups',
            ['pipeline' => $pipeline, 'header' => $header, 'after' => $after, 'limit' => $limit]));
    }

    /**
     * Every group of a pipeline, a page of $pageSize at a time (one sql.Groups call per page).
     *
     * @return \Generator<int, GroupStats>
     */
    public function eachGroup(string $pipeline, string $header = '', int $pageSize = 100): \Generator
    {
        $after = '';
        do {
            $page = $this->groups($pipeline, $header, $after, $pageSize);
            yield from $page->groups;
            $after = $page->nextAfter;
        } while (!$page->isLast());
    }

    /**
     * sql.Flush: deletes a pipeline's waiting (ready and delayed) jobs, or only those of one group
     * (the jobs whose $header has the first value $value). Jobs at a worker are left to finish.
     * Without a header it deletes every waiting job of the pipeline.
     *
     * @return int the jobs deleted
     */
    public function flush(string $pipeline, string $header = '', string $value = ''): int
    {
        return $this->count($this->call('sql.Flush', ['pipeline' => $pipeline, 'header' => $header, 'value' => $value]));
    }

    /**
     * sql.Move: re-routes a pipeline's waiting jobs (or one group's) to another pipeline on the same
     * connection, with a new priority if one is given.
     *
     * @return int the jobs moved
     */
    public function move(string $from, string $to, ?int $priority = null, string $header = '', string $value = ''): int
    {
        return $this->count($this->call('sql.Move',
            ['from' => $from, 'to' => $to, 'priority' => $priority, 'header' => $header, 'value' => $value]));
    }

    /**
     * sql.FailedList: a page of a pipeline's failed jobs in id order.
     *
     * @param int $afterId the last id of the previous page (0 for the first: $page->nextAfterId)
     * @param int $limit the page size, 1 to 1000
     */
    public function failedList(string $pipeline, int $afterId = 0, int $limit = 50): FailedPage
    {
        self::pageSize($limit);
        return FailedPage::fromArray($this->call('sql.FailedList',
            ['pipeline' => $pipeline, 'after_id' => $afterId, 'limit' => $limit]));
    }

    /**
     * sql.FailedRetry: puts failed jobs (FailedJob::$id, FoundJob::$failedId) back to ready, their
     * attempts counted afresh.
     *
     * @return int the jobs put back
     */
    public function failedRetry(string $pipeline, int ...$ids): int
    {
        return $this->count($this->call('sql.FailedRetry', ['pipeline' => $pipeline, 'ids' => self::failedIds($ids)]));
    }

    /** sql.FailedRetry of every failed job of the pipeline; returns how many went back. */
    public function failedRetryAll(string $pipeline): int
    {
        return $this->count($this->call('sql.FailedRetry', ['pipeline' => $pipeline, 'all' => true]));
    }

    /**
     * sql.FailedDelete: deletes failed jobs for good.
     *
     * @return int the jobs deleted
     */
    public function failedDelete(string $pipeline, int ...$ids): int
    {
        return $this->count($this->call('sql.FailedDelete', ['pipeline' => $pipeline, 'ids' => self::failedIds($ids)]));
    }

    /** sql.FailedDelete of every failed job of the pipeline; returns how many were deleted. */
    public function failedDeleteAll(string $pipeline): int
    {
        return $this->count($this->call('sql.FailedDelete', ['pipeline' => $pipeline, 'all' => true]));
    }

    /**
     * sql.Find: where each job is, by the ids it was pushed with (QueuedTask::getId()), in the order
     * of $ids: one FoundJob per matching job and one with state not_found per id that matched nothing.
     *
     * @param string ...$ids 1 to 1000 job ids
     * @return list<FoundJob>
     */
    public function find(string $pipeline, string ...$ids): array
    {
        $answer = $this->call('sql.Find', ['pipeline' => $pipeline, 'ids' => self::jobIds('find', $ids)]);
        return \array_values(\array_map(FoundJob::fromArray(...), $this->list($answer, 'jobs')));
    }

    /**
     * sql.Cancel: deletes the waiting jobs with these ids and reports those already at a worker
     * (they finish). Failed jobs are not touched.
     *
     * @param string ...$ids 1 to 1000 job ids
     */
    public function cancel(string $pipeline, string ...$ids): CancelResult
    {
        return CancelResult::fromArray($this->call('sql.Cancel', ['pipeline' => $pipeline, 'ids' => self::jobIds('cancel', $ids)]));
    }

    /**
     * sql.Schedules: the durable cron entries of `sql.schedules`, with their next and last tick.
     *
     * @return list<Schedule> in name order
     */
    public function schedules(): array
    {
        return \array_values(\array_map(Schedule::fromArray(...), $this->list($this->call('sql.Schedules', new \stdClass()), 'schedules')));
    }

    /**
     * Pushes tasks in one database transaction (sql.PushBatch): all are stored or none, with one
     * commit however many there are. The tasks are the jobs client's own (QueueInterface::create(),
     * with headers, delay, priority and auto-ack), sent as the jobs client sends jobs.PushBatch; each
     * gets a new UUID as its id, as with Queue::dispatch().
     *
     * @param QueueInterface|non-empty-string $queue the sql pipeline
     * @return list<QueuedTask> the tasks as queued, with their ids (for find() and cancel())
     */
    public function dispatchMany(QueueInterface|string $queue, PreparedTaskInterface ...$tasks): array
    {
        $pipeline = $queue instanceof QueueInterface ? $queue->getName() : $queue;
        if ($pipeline === '') {
            throw new \InvalidArgumentException('dispatchMany: the pipeline name is empty');
        }
        if ($tasks === []) {
            return [];
        }
        $jobs = $queued = [];
        foreach ($tasks as $task) {
            $job = $jobs[] = $this->toProto($pipeline, $task);
            $queued[] = new QueuedTask($job->getId(), $pipeline, $task->getName(), $task->getPayload(), $task->getHeaders());
        }
        try {
            $this->proto->call('sql.PushBatch', new PushBatchRequest(['jobs' => $jobs]));
        } catch (\Throwable $e) {
            throw new SqlJobsException('sql.PushBatch: ' . $e->getMessage(), (int)$e->getCode(), $e);
        }
        return $queued;
    }

    /**
     * A task as the jobs client's Pipeline::sendMany() builds it for jobs.PushBatch.
     */
    private function toProto(string $pipeline, PreparedTaskInterface $task): Job
    {
        $headers = [];
        foreach ($task->getHeaders() as $name => $values) {
            if (\count($values) > 0) {
                $headers[$name] = new HeaderValue(['value' => $values]);
            }
        }
        $options = $task instanceof OptionsAwareInterface ? $task->getOptions() : $task;
        return new Job([
            'job' => $task->getName(),
            'id' => self::uuid4(),
            'payload' => $task->getPayload(),
            'headers' => $headers,
            'options' => new OptionsMessage(\array_merge(self::options($options), ['pipeline' => $pipeline])),
        ]);
    }

    /** @return array<string, mixed> */
    private static function options(OptionsInterface $options): array
    {
        if (\method_exists($options, 'toArray')) {
            /** @var array<string, mixed> */
            return $options->toArray();
        }
        return ['priority' => $options->getPriority(), 'delay' => $options->getDelay(), 'auto_ack' => $options->getAutoAck()];
    }

    private static function uuid4(): string
    {
        $b = \random_bytes(16);
        $b[6] = \chr(\ord($b[6]) & 0x0f | 0x40);
        $b[8] = \chr(\ord($b[8]) & 0x3f | 0x80);
        return \vsprintf('%s%s-%s-%s-%s-%s%s%s', \str_split(\bin2hex($b), 4));
    }

    /**
     * @return array<string, mixed>
     */
    private function call(string $method, mixed $request): array
    {
        try {
            $answer = $this->json->call($method, $request);
        } catch (\Throwable $e) {
            throw new SqlJobsException($method . ': ' . $e->getMessage(), (int)$e->getCode(), $e);
        }
        if (!\is_array($answer)) {
            throw new SqlJobsException(\sprintf('%s: unexpected answer %s', $method, \json_encode($answer)));
        }
        return $answer;
    }

    /**
     * @param array<string, mixed> $answer
     * @return list<array<string, mixed>>
     */
    private function list(array $answer, string $key): array
    {
        return \array_values(\array_filter((array)($answer[$key] ?? []), 'is_array'));
    }

    /** @param array<string, mixed> $answer */
    private function count(array $answer): int
    {
        return (int)($answer['count'] ?? 0);
    }

    private static function pageSize(int $limit): void
    {
        if ($limit < 1 || $limit > 1000) {
            throw new \InvalidArgumentException(\sprintf('limit %d: use 1 to 1000', $limit));
        }
    }

    /**
     * @param array<int|string, int> $ids
     * @return list<int>
     */
    private static function failedIds(array $ids): array
    {
        if ($ids === []) {
            throw new \InvalidArgumentException('no failed job ids given: pass the FailedJob ids, or use failedRetryAll() / failedDeleteAll()');
        }
        return \array_values($ids);
    }

    /**
     * @param array<int|string, string> $ids
     * @return list<string>
     */
    private static function jobIds(string $method, array $ids): array
    {
        $n = \count($ids);
        if ($n < 1 || $n > self::MAX_IDS) {
            throw new \InvalidArgumentException(\sprintf('%s: %d job ids given: use 1 to %d', $method, $n, self::MAX_IDS));
        }
        return \array_values($ids);
    }
}
