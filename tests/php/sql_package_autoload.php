<?php
/**
 * What `require 'vendor/autoload.php'` gives an application that installed rr-sql/jobs: the real
 * spiral/roadrunner-jobs client ($RR_PHP_CLIENT/autoload.php, no composer on the test machines) and
 * the package's classes, autoloaded by the PSR-4 map of php/composer.json.
 */

declare(strict_types=1);

require getenv('RR_PHP_CLIENT') . '/autoload.php';

(static function (): void {
    $root = dirname(__DIR__, 2) . '/php';
    $composer = json_decode((string)file_get_contents("$root/composer.json"), true, 512, JSON_THROW_ON_ERROR);
    foreach ($composer['autoload']['psr-4'] as $prefix => $dir) {
        $dir = "$root/" . rtrim($dir, '/');
        spl_autoload_register(static function (string $class) use ($prefix, $dir): void {
            if (strncmp($class, $prefix, strlen($prefix)) === 0) {
                $file = $dir . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
                if (is_file($file)) {
                    require $file;
                }
            }
        });
    }
})();
