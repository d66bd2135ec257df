<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * A durable cron entry of `sql.schedules` ({@see SqlClient::schedules()}).
 */
final class Schedule
{
    /**
     * @param string $missed once (a tick missed while every node was down is pushed once at start) or skip
     * @param \DateTimeImmutable|null $lastTick the last tick pushed (null: none yet)
     */
    public function __construct(
        public readonly string $name,
        public readonly string $cron,
        public readonly string $timezone,
        public readonly string $pipeline,
        public readonly string $job,
        public readonly string $missed,
        public readonly ?\DateTimeImmutable $nextTick,
        public readonly ?\DateTimeImmutable $lastTick,
    ) {
    }

    /** @param array<string, mixed> $a an entry of sql.Schedules' answer */
    public static function fromArray(array $a): self
    {
        return new self(
            (string)($a['name'] ?? ''),
            (string)($a['cron'] ?? ''),
            (string)($a['timezone'] ?? ''),
            (string)($a['pipeline'] ?? ''),
            (string)($a['job'] ?? ''),
            (string)($a['missed'] ?? ''),
            Wire::time($a['next_tick'] ?? ''),
            Wire::time($a['last_tick'] ?? ''),
        );
    }
}
