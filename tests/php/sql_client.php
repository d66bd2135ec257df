<?php
/**
 * Runs one call of the rr-sql/jobs package against an rr and prints its result as JSON, for the Go
 * tests (php_package_test.go):
 *
 *   php sql_client.php RPC_ADDRESS COMMAND ARGS_JSON
 *
 * COMMAND is a SqlClient method, called with ARGS_JSON (a list: positional arguments; an object:
 * named ones), or one of:
 *   create        {"name": ..., named arguments of SqlCreateInfo..., "resume": bool}: Jobs::create()
 *   dispatchMany  {"pipeline": ..., "tasks": [{"name", "payload", "headers", "delay", "priority", "auto_ack"}]}:
 *                 tasks made by the jobs client's Queue::create(), pushed with SqlClient::dispatchMany()
 *
 * Objects print as {"class": short name, ...their public properties}, times as RFC 3339 with
 * milliseconds. An exception prints {"error": short class name, "message": ...} and exits with 1.
 */

declare(strict_types=1);

require __DIR__ . '/sql_package_autoload.php';

use RrSql\Jobs\SqlClient;
use RrSql\Jobs\SqlCreateInfo;
use RrSql\Jobs\UniqueWhile;
use Spiral\Goridge\RPC\RPC;
use Spiral\RoadRunner\Jobs\Jobs;
use Spiral\RoadRunner\Jobs\Options;
use Spiral\RoadRunner\Jobs\Task\QueuedTaskInterface;

function dump(mixed $v): mixed
{
    if ($v instanceof DateTimeInterface) {
        return $v->format('Y-m-d\TH:i:s.vP');
    }
    if ($v instanceof UnitEnum) {
        return $v instanceof BackedEnum ? $v->value : $v->name;
    }
    if ($v instanceof QueuedTaskInterface) {
        return ['class' => 'QueuedTask', 'id' => $v->getId(), 'pipeline' => $v->getPipeline(), 'name' => $v->getName(),
            'payload' => $v->getPayload(), 'headers' => (object)$v->getHeaders()];
    }
    if (is_object($v)) {
        $out = ['class' => (new ReflectionClass($v))->getShortName()];
        foreach ((new ReflectionObject($v))->getProperties(ReflectionProperty::IS_PUBLIC) as $p) {
            $out[$p->getName()] = $p->getName() === 'headers' ? (object)$p->getValue($v) : dump($p->getValue($v));
        }
        return $out;
    }
    if (is_array($v)) {
        return array_map('dump', $v);
    }
    return $v;
}

[, $address, $command, $argsJson] = $argv + [3 => '[]'];
$args = json_decode($argsJson, true, 512, JSON_THROW_ON_ERROR);
$rpc = RPC::create('tcp://' . $address);
$sql = new SqlClient($rpc);

try {
    switch ($command) {
        case 'create':
            $resume = (bool)($args['resume'] ?? false);
            unset($args['resume']);
            if (isset($args['uniqueWhile'])) {
                $args['uniqueWhile'] = UniqueWhile::from($args['uniqueWhile']);
            }
            $info = new SqlCreateInfo(...$args);
            $queue = (new Jobs($rpc))->create($info);
            if ($resume) {
                $queue->resume();
            }
            $result = ['queue' => $queue->getName(), 'declared' => $info->toArray()];
            break;
        case 'dispatchMany':
            $queue = (new Jobs($rpc))->connect($args['pipeline']);
            $tasks = [];
            foreach ($args['tasks'] as $t) {
                $options = (new Options())->withDelay((int)($t['delay'] ?? 0))->withPriority((int)($t['priority'] ?? 0))
                    ->withAutoAck((bool)($t['auto_ack'] ?? false));
                $task = $queue->create($t['name'], $t['payload'] ?? '', $options);
                foreach ($t['headers'] ?? [] as $name => $values) {
                    $task = $task->withHeader($name, $values);
                }
                $tasks[] = $task;
            }
            $result = $sql->dispatchMany($queue, ...$tasks);
            break;
        case 'eachGroup':
            $result = iterator_to_array($sql->eachGroup(...$args), false);
            break;
        default:
            if (!method_exists($sql, $command)) {
                throw new InvalidArgumentException("unknown command $command");
            }
            $result = $sql->{$command}(...$args);
    }
} catch (Throwable $e) {
    echo json_encode(['error' => (new ReflectionClass($e))->getShortName(), 'message' => $e->getMessage()], JSON_UNESCAPED_SLASHES), "\n";
    exit(1);
}
echo json_encode(dump($result), JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR), "\n";
