<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * The counts of one group: the jobs whose header has this first value ("" = jobs without it).
 */
final class GroupStats
{
    public function __construct(
        public readonly string $value,
        public readonly int $ready,
        public readonly int $delayed,
        public readonly int $reserved,
        /** the pipeline the group's jobs go to while it overflows ("" when it does not) */
        public readonly string $overflow = '',
    ) {
    }

    /** @param array<string, mixed> $a an entry of sql.Groups' answer */
    public static function fromArray(array $a): self
    {
        return new self(
            (string)($a['value'] ?? ''),
            (int)($a['ready'] ?? 0),
            (int)($a['delayed'] ?? 0),
            (int)($a['reserved'] ?? 0),
            (string)($a['overflow'] ?? ''),
        );
    }
}
