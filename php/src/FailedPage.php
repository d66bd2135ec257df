<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * One page of failed jobs in id order ({@see SqlClient::failedList()}).
 */
final class FailedPage
{
    /**
     * @param list<FailedJob> $jobs
     * @param int $nextAfterId the `afterId` of the next page; 0 on the last page
     */
    public function __construct(
        public readonly array $jobs,
        public readonly int $nextAfterId,
    ) {
    }

    public function isLast(): bool
    {
        return $this->nextAfterId === 0;
    }

    /** @param array<string, mixed> $a sql.FailedList's answer */
    public static function fromArray(array $a): self
    {
        return new self(
            \array_values(\array_map(FailedJob::fromArray(...), (array)($a['jobs'] ?? []))),
            (int)($a['next_after_id'] ?? 0),
        );
    }
}
