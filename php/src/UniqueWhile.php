<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * The pipeline option `unique_while`: how long a job pushed with the header x-sql-unique-key blocks
 * another push of the same key in the same queue.
 */
enum UniqueWhile: string
{
    /** Until the job reaches a worker: while it is ready, delayed or claimed into a node's prefetch (the default). */
    case Waiting = 'waiting';

    /** Until the job is acked or failed: while it waits, at a worker, and through its requeues. */
    case Active = 'active';
}
