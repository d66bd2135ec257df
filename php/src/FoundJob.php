<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * Where a job is ({@see SqlClient::find()}): one per job matching an id (two jobs pushed with one id
 * give two), and one with state "not_found" per id that matched nothing.
 */
final class FoundJob
{
    public const READY = 'ready';
    public const DELAYED = 'delayed';
    public const RESERVED = 'reserved';
    public const FAILED = 'failed';
    public const NOT_FOUND = 'not_found';

    /**
     * @param string $state one of the constants of this class
     * @param array<string, list<string>> $headers
     * @param string $node reserved: the id of the rr node holding it
     * @param bool $delivered reserved: the claim reached a worker
     * @param string $error failed: the reason
     * @param int|null $failedId failed: the entry that failedRetry() and failedDelete() take
     */
    public function __construct(
        public readonly string $id,
        public readonly string $state,
        public readonly string $job = '',
        public readonly array $headers = [],
        public readonly int $attempts = 0,
        public readonly ?\DateTimeImmutable $availableAt = null,
        public readonly string $node = '',
        public readonly bool $delivered = false,
        public readonly string $error = '',
        public readonly ?\DateTimeImmutable $failedAt = null,
        public readonly ?int $failedId = null,
    ) {
    }

    public function exists(): bool
    {
        return $this->state !== self::NOT_FOUND;
    }

    /** @param array<string, mixed> $a an entry of sql.Find's answer */
    public static function fromArray(array $a): self
    {
        return new self(
            (string)($a['id'] ?? ''),
            (string)($a['state'] ?? ''),
            (string)($a['job'] ?? ''),
            Wire::headers($a['headers'] ?? []),
            (int)($a['attempts'] ?? 0),
            Wire::time($a['available_at'] ?? ''),
            (string)($a['node'] ?? ''),
            (bool)($a['delivered'] ?? false),
            (string)($a['error'] ?? ''),
            Wire::time($a['failed_at'] ?? ''),
            isset($a['failed_id']) ? (int)$a['failed_id'] : null,
        );
    }
}
