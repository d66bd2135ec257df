<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * One pipeline's numbers ({@see SqlClient::stats()}).
 */
final class PipelineStats
{
    public function __construct(
        public readonly string $pipeline,
        /** the storage name of its jobs */
        public readonly string $queue,
        /** its entry under sql.connections */
        public readonly string $connection,
        public readonly int $ready,
        public readonly int $delayed,
        public readonly int $reserved,
        public readonly int $failed,
        /** age of the oldest job waiting to run, in milliseconds (0 when none is) */
        public readonly int $oldestReadyMs,
    ) {
    }

    /** @param array<string, mixed> $a an entry of sql.Stats' answer */
    public static function fromArray(array $a): self
    {
        return new self(
            (string)($a['pipeline'] ?? ''),
            (string)($a['queue'] ?? ''),
            (string)($a['connection'] ?? ''),
            (int)($a['ready'] ?? 0),
            (int)($a['delayed'] ?? 0),
            (int)($a['reserved'] ?? 0),
            (int)($a['failed'] ?? 0),
            (int)($a['oldest_ready_ms'] ?? 0),
        );
    }
}
