<?php

declare(strict_types=1);

namespace RrSql\Jobs;

/**
 * The pipeline option `unique_while`: how long a job pushed with the header x-sql-unique-key blocks
 * another push of the same key in the same queue.
 */
enum UniqueWhile: string
{
    /** While the job is ready or delayed (the default). */
    case Waiting = 'waiting';

    /** While it is waiting or at a worker. */
    case Active = 'active';
}
