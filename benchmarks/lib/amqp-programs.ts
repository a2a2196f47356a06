// The real programs bench:amqp runs against Sluice and RabbitMQ (issue 13): a Celery worker fed
// with .delay(), and a RabbitMQ Java client program. Both from Debian packages (python3-celery,
// librabbitmq-client-java, default-jdk-headless), as the interop tests use them; each run is
// bounded by a message count and a deadline, on 127.0.0.1 only.

import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Debian's interpreter: python3-celery is installed for it, not for a pyenv python3 on PATH. */
const debianPython = '/usr/bin/python3'
const javaClassPath = ['/usr/share/java/amqp-client.jar', '/usr/share/java/slf4j-api.jar', '/usr/share/java/slf4j-nop.jar'].join(':')

export interface ProgramResult {
  /** Per second, over the timed part only. */
  readonly rates: Readonly<Record<string, number>>
}

// The worker runs as users start it (`celery -A tasks worker`, prefork, one process: the machine
// is small and shared); every task is acks_late and appends its number to a file, which the
// driver counts. Timed: from the first .delay() to the last execution, after a warm-up task.
const celeryTasks = `
import os
from celery import Celery

app = Celery('sluice_bench', broker=os.environ['BROKER_URL'])
app.conf.task_acks_late = True
app.conf.worker_hijack_root_logger = False
OUT = os.environ['OUT_FILE']

@app.task
def work(i):
    with open(OUT, 'a') as f:
        f.write('%d\\n' % i)
`

const celeryDriver = `
import json, os, subprocess, sys, time
from tasks import work

count, deadline = int(sys.argv[1]), time.time() + float(sys.argv[2])
out = os.environ['OUT_FILE']

def done():
    try:
        with open(out) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0

def wait_for(n):
    while done() < n:
        if time.time() > deadline:
            raise SystemExit('celery: %d of %d tasks ran before the deadline' % (done(), n))
        time.sleep(0.01)

worker = subprocess.Popen([sys.executable, '-m', 'celery', '-A', 'tasks', 'worker', '-n', 'bench@%h',
                           '--concurrency', '1', '--loglevel', 'WARNING', '--without-gossip',
                           '--without-mingle', '--without-heartbeat'], stderr=subprocess.DEVNULL)
try:
    work.delay(-1)
    wait_for(1)
    start = time.time()
    for i in range(count):
        work.delay(i)
    sent = time.time()
    wait_for(count + 1)
    end = time.time()
    with open(out) as f:
        ran = sorted(int(l) for l in f if l.strip() != '-1')
    if ran != list(range(count)):
        raise SystemExit('celery: the tasks run were not each task once')
    print(json.dumps({'tasks': count / (end - start), 'delay': count / (sent - start)}))
finally:
    worker.terminate()
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
`

// Tutorial 7's batch strategy (publish a window, wait for its confirms), then a consumer with
// manual acks and a prefetch; persistent messages of the bench's body size.
const javaProgram = (bodyBytes: number): string => `
import com.rabbitmq.client.*;
import java.util.concurrent.*;

public class Bench {
  public static void main(String[] args) throws Exception {
    String uri = args[0], queue = args[1];
    int count = Integer.parseInt(args[2]), window = Integer.parseInt(args[3]), prefetch = Integer.parseInt(args[4]);
    ConnectionFactory f = new ConnectionFactory();
    f.setUri(uri);
    byte[] body = new byte[${bodyBytes}];
    java.util.Arrays.fill(body, (byte) 'x');
    try (Connection conn = f.newConnection()) {
      Channel ch = conn.createChannel();
      ch.queueDeclare(queue, true, false, false, null);
      ch.confirmSelect();
      long t0 = System.nanoTime();
      for (int i = 0; i < count; i++) {
        ch.basicPublish("", queue, MessageProperties.PERSISTENT_BASIC, body);
        if ((i + 1) % window == 0 || i == count - 1) ch.waitForConfirmsOrDie(60000);
      }
      double publish = count / ((System.nanoTime() - t0) / 1e9);
      Channel c = conn.createChannel();
      c.basicQos(prefetch);
      CountDownLatch done = new CountDownLatch(count);
      long t1 = System.nanoTime();
      c.basicConsume(queue, false, new DefaultConsumer(c) {
        @Override
        public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] b) throws java.io.IOException {
          getChannel().basicAck(env.getDeliveryTag(), false);
          done.countDown();
        }
      });
      if (!done.await(120, TimeUnit.SECONDS)) throw new RuntimeException("consumed " + (count - done.getCount()) + " of " + count);
      double consume = count / ((System.nanoTime() - t1) / 1e9);
      System.out.println("{\\"publish\\": " + publish + ", \\"consume\\": " + consume + "}");
    }
  }
}
`

/** Fails with the Debian package to install when a program is missing. */
function need(ok: boolean, what: string, pkg: string): void {
  if (!ok) throw new Error(`${what} is missing: install the Debian package "${pkg}"`)
}

function runJson(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    // The deadline bounds a run that stalls (a lost task, a broker that stops answering).
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs)
    p.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}:\n${err.slice(-2000)}`))
      resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>)
    })
  })
}

/** One Celery run: `count` tasks sent with .delay() to a fresh worker; tasks/s end to end and the send rate alone. */
export async function runCelery(brokerPort: number, count: number, timeoutMs: number): Promise<ProgramResult> {
  need(spawnSync(debianPython, ['-c', 'import celery'], { stdio: 'ignore' }).status === 0, 'celery for /usr/bin/python3', 'python3-celery')
  const dir = mkdtempSync(join(tmpdir(), 'celery-bench-'))
  writeFileSync(join(dir, 'tasks.py'), celeryTasks)
  writeFileSync(join(dir, 'driver.py'), celeryDriver)
  // Celery's default virtual host spelling, as its users write the URL.
  const env = { ...process.env, BROKER_URL: `amqp://guest:guest@127.0.0.1:${brokerPort}//`, OUT_FILE: join(dir, 'done'), PYTHONPATH: dir, PYTHONDONTWRITEBYTECODE: '1' }
  const r = await runJson(debianPython, [join(dir, 'driver.py'), String(count), String(timeoutMs / 1000)], { cwd: dir, env, timeoutMs: timeoutMs + 30_000 })
  return { rates: r }
}

/** Compiles the Java program once; returns the class directory. */
export function compileJava(bodyBytes: number): string {
  need(spawnSync('javac', ['-version'], { stdio: 'ignore' }).status === 0, 'javac', 'default-jdk-headless')
  need(spawnSync('test', ['-f', '/usr/share/java/amqp-client.jar']).status === 0, 'the RabbitMQ Java client', 'librabbitmq-client-java')
  const dir = mkdtempSync(join(tmpdir(), 'java-bench-'))
  writeFileSync(join(dir, 'Bench.java'), javaProgram(bodyBytes))
  const r = spawnSync('javac', ['-cp', javaClassPath, '-d', dir, join(dir, 'Bench.java')], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`javac failed:\n${r.stderr}`)
  return dir
}

/** One Java run: `count` persistent messages published with batch confirms, then consumed with acks. */
export async function runJava(classDir: string, brokerPort: number, queue: string, count: number, window: number, prefetch: number, timeoutMs: number): Promise<ProgramResult> {
  const r = await runJson('java', ['-cp', `${javaClassPath}:${classDir}`, 'Bench', `amqp://guest:guest@127.0.0.1:${brokerPort}`, queue, String(count), String(window), String(prefetch)], { timeoutMs })
  return { rates: r }
}
