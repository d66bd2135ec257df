<?php

declare(strict_types=1);

namespace RrSql\Jobs;

use Spiral\RoadRunner\Jobs\Queue\CreateInfo;
use Spiral\RoadRunner\Jobs\Queue\Driver;

/**
 * The create-info of a `driver: sql` pipeline for {@see \Spiral\RoadRunner\Jobs\Jobs::create()}.
 *
 *     $queue = $jobs->create(new SqlCreateInfo('reports', prefetch: 20, pollInterval: '200ms'));
 *
 * Every argument but the name is one pipeline option of the driver (the `config:` keys of a pipeline
 * in .rr.yaml); an argument left null is left out, and the driver's default applies. Durations are Go
 * duration strings ('500ms', '2s', '1m'); max_payload is a byte count or a size ('512KB', '10MiB').
 * The values are checked here for their form; the driver checks their ranges and answers a wrong one
 * with an error naming the option (Jobs::create() throws it as a JobsException).
 *
 * The client's Driver enum has no `sql` case: the parent gets Driver::Unknown, and toArray() puts
 * `driver` => `sql` before the parent's keys (the first key wins in `+`).
 */
final class SqlCreateInfo extends CreateInfo
{
    private const DURATION = '/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/';
    private const SIZE = '/^\d+(\.\d+)?\s*([KMGTPE]i?B?|B)?$/i';
    private const HEADER = '/^[A-Za-z0-9_.\-]{1,128}$/';

    /** @var array<non-empty-string, string> the driver's options, as jobs.Declare takes them */
    private readonly array $options;

    /**
     * @param non-empty-string $name the pipeline name
     * @param positive-int $priority lower runs first; jobs pushed with priority 0 take this one
     * @param string|null $connection a name under sql.connections (default: "default")
     * @param string|null $queue storage name (default: the pipeline name); pipelines with one queue and connection share its jobs
     * @param positive-int|null $prefetch jobs a node holds at once (default 100)
     * @param string|null $pollInterval idle poll period, a duration (default 1s)
     * @param string|null $lease claim deadline, a duration (default 1m)
     * @param positive-int|null $maxAttempts deliveries without an answer before the job fails (default 3)
     * @param string|null $backoff delay before the delivery after the first such failure, a duration (default 1s)
     * @param string|null $backoffMax the largest such delay, a duration (default 5m)
     * @param int|string|null $maxPayload largest payload, bytes or a size (default 10MB)
     * @param string|null $groupBy the header whose first value names a job's group
     * @param int|null $groupConcurrency jobs of one group reserved at once across the cluster (0 = no cap; needs groupBy)
     * @param int|null $overflowReadyOver ready jobs above which a group overflows (needs groupBy and overflowTo)
     * @param string|null $overflowTo the sql pipeline that takes the jobs of overflowing groups
     * @param string|null $overflowInterval how often the overflow is checked, a duration (default 1s)
     * @param UniqueWhile|null $uniqueWhile how long a job's x-sql-unique-key blocks another push (default: while waiting)
     */
    public function __construct(
        string $name,
        int $priority = self::PRIORITY_DEFAULT_VALUE,
        ?string $connection = null,
        ?string $queue = null,
        ?int $prefetch = null,
        ?string $pollInterval = null,
        ?string $lease = null,
        ?int $maxAttempts = null,
        ?string $backoff = null,
        ?string $backoffMax = null,
        int|string|null $maxPayload = null,
        ?string $groupBy = null,
        ?int $groupConcurrency = null,
        ?int $overflowReadyOver = null,
        ?string $overflowTo = null,
        ?string $overflowInterval = null,
        ?UniqueWhile $uniqueWhile = null,
    ) {
        if ($name === '') {
            throw new \InvalidArgumentException('SqlCreateInfo: name is empty: give the pipeline a name');
        }
        if ($priority < 1) {
            throw new \InvalidArgumentException(\sprintf('SqlCreateInfo: priority must be at least 1 (lower runs first), got %d', $priority));
        }
        parent::__construct(Driver::Unknown, $name, $priority);

        $o = [];
        self::text($o, 'connection', $connection);
        self::text($o, 'queue', $queue);
        self::integer($o, 'prefetch', $prefetch, 1);
        self::duration($o, 'poll_interval', $pollInterval);
        self::duration($o, 'lease', $lease);
        self::integer($o, 'max_attempts', $maxAttempts, 1);
        self::duration($o, 'backoff', $backoff);
        self::duration($o, 'backoff_max', $backoffMax);
        if (\is_int($maxPayload)) {
            self::integer($o, 'max_payload', $maxPayload, 1);
        } elseif ($maxPayload !== null) {
            if (\preg_match(self::SIZE, $maxPayload) !== 1) {
                throw new \InvalidArgumentException(\sprintf(
                    "SqlCreateInfo: max_payload must be a byte count or a size such as '512KB' or '10MiB', got '%s'", $maxPayload));
            }
            $o['max_payload'] = $maxPayload;
        }
        if ($groupBy !== null && \preg_match(self::HEADER, $groupBy) !== 1) {
            throw new \InvalidArgumentException(\sprintf(
                "SqlCreateInfo: group_by must be a header name of 1-128 letters, digits, '_', '-' or '.', got '%s'", $groupBy));
        }
        self::text($o, 'group_by', $groupBy);
        self::integer($o, 'group_concurrency', $groupConcurrency, 0);
        if (($overflowReadyOver === null) !== ($overflowTo === null)) {
            throw new \InvalidArgumentException(
                'SqlCreateInfo: overflowReadyOver and overflowTo go together: the ready jobs above which a group overflows, and the pipeline that takes its jobs');
        }
        self::integer($o, 'overflow.ready_over', $overflowReadyOver, 1);
        self::text($o, 'overflow.to', $overflowTo);
        self::duration($o, 'overflow_interval', $overflowInterval);
        if ($uniqueWhile !== null) {
            $o['unique_while'] = $uniqueWhile->value;
        }
        $this->options = $o;
    }

    /**
     * The driver's options of this pipeline (what toArray() adds to name, driver and priority).
     *
     * @return array<non-empty-string, string>
     */
    public function getOptions(): array
    {
        return $this->options;
    }

    public function toArray(): array
    {
        return ['driver' => 'sql'] + $this->options + parent::toArray();
    }

    /** @param array<string, string> $o */
    private static function text(array &$o, string $key, ?string $value): void
    {
        if ($value === null) {
            return;
        }
        if ($value === '') {
            throw new \InvalidArgumentException(\sprintf('SqlCreateInfo: %s is empty: leave it null for the default', $key));
        }
        $o[$key] = $value;
    }

    /** @param array<string, string> $o */
    private static function integer(array &$o, string $key, ?int $value, int $min): void
    {
        if ($value === null) {
            return;
        }
        if ($value < $min) {
            throw new \InvalidArgumentException(\sprintf('SqlCreateInfo: %s must be at least %d, got %d', $key, $min, $value));
        }
        $o[$key] = (string)$value;
    }

    /** @param array<string, string> $o */
    private static function duration(array &$o, string $key, ?string $value): void
    {
        if ($value === null) {
            return;
        }
        if (\preg_match(self::DURATION, $value) !== 1) {
            throw new \InvalidArgumentException(\sprintf(
                "SqlCreateInfo: %s must be a duration such as '500ms', '2s' or '1m', got '%s'", $key, $value));
        }
        $o[$key] = $value;
    }
}
