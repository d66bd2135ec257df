<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * @internal reads the values of the sql RPC answers (times, headers).
 */
final class Wire
{
    /**
     * @return \DateTimeImmutable|null null for "" (absent)
     */
    public static function time(mixed $value): ?\DateTimeImmutable
    {
        if (!\is_string($value) || $value === '') {
            return null;
        }
        // PHP keeps microseconds: cut a longer fraction (Go writes up to nanoseconds).
        $value = (string)\preg_replace('/(\.\d{6})\d+/', '$1', $value);
        try {
            return new \DateTimeImmutable($value);
        } catch (\Exception $e) {
            throw new SqlJobsException(\sprintf('unreadable time %s in an sql RPC answer: %s', \json_encode($value), $e->getMessage()), 0, $e);
        }
    }

    /**
     * @return array<string, list<string>>
     */
    public static function headers(mixed $value): array
    {
        $out = [];
        foreach (\is_array($value) ? $value : [] as $name => $values) {
            $out[(string)$name] = \array_values(\array_map('strval', (array)$values));
        }
        return $out;
    }
}
