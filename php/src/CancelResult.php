<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * The answer of {@see SqlClient::cancel()}: how many waiting jobs were deleted, and one entry per
 * job matched plus one per id not found. Failed jobs are not touched (delete them with failedDelete()).
 */
final class CancelResult
{
    /**
     * @param list<CancelledJob> $jobs
     */
    public function __construct(
        public readonly int $cancelled,
        public readonly array $jobs,
    ) {
    }

    /** @param array<string, mixed> $a sql.Cancel's answer */
    public static function fromArray(array $a): self
    {
        return new self(
            (int)($a['cancelled'] ?? 0),
            \array_values(\array_map(CancelledJob::fromArray(...), (array)($a['jobs'] ?? []))),
        );
    }
}
