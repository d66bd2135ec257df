<?php

declare(strict_types=1);

namespace RrSql\Jobs;

use Spiral\RoadRunner\Jobs\Exception\JobsException;

/**
 * An `sql.*` RPC call failed: the message names the method and carries the driver's error (which
 * names the pipeline, key or value at fault). A JobsException, like the jobs client's own errors.
 */
class SqlJobsException extends JobsException
{
}
