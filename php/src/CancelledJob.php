<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * What sql.Cancel did to one job, or to an id that matched nothing ({@see CancelResult}).
 */
final class CancelledJob
{
    public const CANCELLED = 'cancelled';
    public const RESERVED = 'reserved';
    public const NOT_FOUND = 'not_found';

    /**
     * @param string $state cancelled (it was waiting and is deleted), reserved (it is at a worker
     *                      and finishes) or not_found
     * @param string $node reserved: the id of the rr node holding it
     */
    public function __construct(
        public readonly string $id,
        public readonly string $state,
        public readonly string $node = '',
    ) {
    }

    /** @param array<string, mixed> $a an entry of sql.Cancel's answer */
    public static function fromArray(array $a): self
    {
        return new self((string)($a['id'] ?? ''), (string)($a['state'] ?? ''), (string)($a['node'] ?? ''));
    }
}
