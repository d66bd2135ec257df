<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * One page of groups in value order ({@see SqlClient::groups()}).
 */
final class GroupPage
{
    /**
     * @param list<GroupStats> $groups
     * @param string $nextAfter the `after` of the next page; "" on the last page
     */
    public function __construct(
        public readonly array $groups,
        public readonly string $nextAfter,
    ) {
    }

    public function isLast(): bool
    {
        return $this->nextAfter === '';
    }

    /** @param array<string, mixed> $a sql.Groups' answer */
    public static function fromArray(array $a): self
    {
        return new self(
            \array_values(\array_map(GroupStats::fromArray(...), (array)($a['groups'] ?? []))),
            (string)($a['next_after'] ?? ''),
        );
    }
}
