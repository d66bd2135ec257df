<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * A job in the failed jobs ({@see SqlClient::failedList()}).
 */
final class FailedJob
{
    /**
     * @param int $id the failed-jobs entry: what failedRetry() and failedDelete() take
     * @param string $jobId the job's own id (Task::getId())
     * @param array<string, list<string>> $headers
     */
    public function __construct(
        public readonly int $id,
        public readonly string $jobId,
        public readonly string $job,
        public readonly string $pipeline,
        public readonly string $payload,
        public readonly array $headers,
        public readonly int $attempts,
        public readonly string $error,
        public readonly ?\DateTimeImmutable $failedAt,
    ) {
    }

    /** @param array<string, mixed> $a an entry of sql.FailedList's answer */
    public static function fromArray(array $a): self
    {
        return new self(
            (int)($a['id'] ?? 0),
            (string)($a['job_id'] ?? ''),
            (string)($a['job'] ?? ''),
            (string)($a['pipeline'] ?? ''),
            (string)($a['payload'] ?? ''),
            Wire::headers($a['headers'] ?? []),
            (int)($a['attempts'] ?? 0),
            (string)($a['error'] ?? ''),
            Wire::time($a['failed_at'] ?? ''),
        );
    }
}
