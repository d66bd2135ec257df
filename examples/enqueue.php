<?php
/**
 * Transactional enqueue: insert a job with plain SQL inside the application's own transaction, so
 * the job exists only if the business data commits. The sql driver picks it up (at once on
 * PostgreSQL through its NOTIFY trigger, within poll_interval elsewhere).
 *
 * The contract (stable across versions of the driver): one row in rr_jobs with
 *   queue        the pipeline's queue (the pipeline name unless its `queue` option says otherwise)
 *   job_id       your job id (any string; spiral/roadrunner-jobs uses a UUID)
 *   name         the job name your worker dispatches on (usually a class name)
 *   payload      the job body (bytes)
 *   headers      JSON object of string => list of strings ('{}' for none)
 *   priority     lower runs first (the pipeline's default is 10)
 *   available_at unix time in milliseconds when it may run (now, or later for a delay)
 *   created_at   unix time in milliseconds
 *   grp          only for a pipeline with `group_by: HEADER`: the job's group, the first value of that
 *                header ('' when the job has none). A group_by pipeline claims only rows with grp set;
 *                leave it NULL (out of the statement) for every other pipeline.
 *   unique_key   only for a unique job: its key (at most 255 characters; NULL for none), also sent as
 *                the header x-sql-unique-key so that the worker sees it. The insert must then end with
 *                the clause of the database that does nothing when a job of the queue holds the key:
 *                  PostgreSQL, SQLite: ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
 *                  MySQL, MariaDB:     ON DUPLICATE KEY UPDATE id = id   (not INSERT IGNORE: it hides other errors)
 *                and the statement's row count says whether the job was created (1) or not (0). On
 *                MySQL that holds with PDO's default; with PDO::MYSQL_ATTR_FOUND_ROWS it is 1 either way.
 * Leave every other column to its default.
 *
 * Usage (the tests run it):
 *   php examples/enqueue.php PDO_DSN USER PASSWORD QUEUE JOB_ID commit|rollback [GROUP] [--unique-key=KEY]
 *   php examples/enqueue.php 'pgsql:host=127.0.0.1;port=5432;dbname=app' app secret emails order-42 commit
 */

declare(strict_types=1);

/** Inserts one job; false when its unique key is held by a job of the queue (nothing inserted). */
function enqueue_job(PDO $pdo, string $queue, string $name, string $id, string $payload,
                     array $headers = [], int $priority = 10, int $delaySeconds = 0, ?string $group = null,
                     ?string $uniqueKey = null): bool
{
    $now = (int)floor(microtime(true) * 1000);
    if ($uniqueKey !== null) {
        $headers['x-sql-unique-key'] = [$uniqueKey];
    }
    $onDuplicateKey = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql'
        ? 'ON DUPLICATE KEY UPDATE id = id'
        : 'ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL DO NOTHING';
    $stmt = $pdo->prepare('INSERT INTO rr_jobs (queue, job_id, name, payload, headers, priority, available_at, created_at, grp, unique_key)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ' . $onDuplicateKey);
    $stmt->bindValue(1, $queue);
    $stmt->bindValue(2, $id);
    $stmt->bindValue(3, $name);
    $stmt->bindValue(4, $payload, PDO::PARAM_LOB);
    $stmt->bindValue(5, json_encode((object)$headers));
    $stmt->bindValue(6, $priority, PDO::PARAM_INT);
    $stmt->bindValue(7, $now + $delaySeconds * 1000, PDO::PARAM_INT);
    $stmt->bindValue(8, $now, PDO::PARAM_INT);
    $stmt->bindValue(9, $group, $group === null ? PDO::PARAM_NULL : PDO::PARAM_STR);
    $stmt->bindValue(10, $uniqueKey, $uniqueKey === null ? PDO::PARAM_NULL : PDO::PARAM_STR);
    $stmt->execute();
    return $stmt->rowCount() === 1;
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $uniqueKey = null;
    foreach ($argv as $i => $arg) {
        if (str_starts_with($arg, '--unique-key=')) {
            $uniqueKey = substr($arg, strlen('--unique-key='));
            unset($argv[$i]);
        }
    }
    $argv = array_values($argv);
    [, $dsn, $user, $password, $queue, $id, $outcome] = $argv + array_fill(0, 7, '');
    $group = count($argv) > 7 ? $argv[7] : null;   // for a group_by pipeline
    $pdo = new PDO($dsn, $user ?: null, $password ?: null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_TIMEOUT => 10]);

    $pdo->beginTransaction();
    // ... the application's own writes would go here (an order row, say) ...
    $created = enqueue_job($pdo, $queue, 'App\\Jobs\\ShipOrder', $id, json_encode(['action' => 'ack', 'order' => $id]),
        ['source' => ['enqueue.php']], group: $group, uniqueKey: $uniqueKey);
    if ($outcome === 'commit') {
        $pdo->commit();
    } else {
        $pdo->rollBack();
    }
    fwrite(STDERR, "job $id: $outcome" . ($created ? '' : ' (not created: a job of the queue holds its unique key)') . "\n");
}
