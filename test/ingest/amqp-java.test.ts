import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { startAmqpServer } from '../helpers/amqp.js'
import { requireProgram } from '../helpers/programs.js'
import { tempDir } from '../helpers/temp.js'

// RabbitMQ's Java client (Debian's librabbitmq-client-java, 5.0), in a small program compiled
// here with javac: publisher confirms, a consumer with manual acks and a prefetch, a transaction.

const run = promisify(execFile)
const clientJar = '/usr/share/java/amqp-client.jar'
// The client logs through SLF4J; the no-op binding keeps its output out of the program's.
const classPath = [clientJar, '/usr/share/java/slf4j-api.jar', '/usr/share/java/slf4j-nop.jar']
const total = 200

const program = `
import com.rabbitmq.client.*;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;

public class Interop {
  public static void main(String[] args) throws Exception {
    ConnectionFactory f = new ConnectionFactory();
    f.setUri(args[0]);
    try (Connection conn = f.newConnection()) {
      Channel ch = conn.createChannel();
      ch.queueDeclare("java-q", true, false, false, null);

      // Publisher confirms.
      ch.confirmSelect();
      for (int i = 0; i < ${total}; i++) {
        ch.basicPublish("", "java-q", MessageProperties.PERSISTENT_TEXT_PLAIN, ("m" + i).getBytes(StandardCharsets.UTF_8));
      }
      ch.waitForConfirmsOrDie(20000);
      System.out.println("confirmed " + ${total});

      // Manual acks with a prefetch: never more than 10 unacked.
      Channel consumer = conn.createChannel();
      consumer.basicQos(10);
      List<String> got = Collections.synchronizedList(new ArrayList<>());
      CountDownLatch done = new CountDownLatch(${total});
      consumer.basicConsume("java-q", false, new DefaultConsumer(consumer) {
        @Override
        public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) throws IOException {
          got.add(new String(body, StandardCharsets.UTF_8));
          getChannel().basicAck(env.getDeliveryTag(), false);
          done.countDown();
        }
      });
      if (!done.await(20, TimeUnit.SECONDS)) throw new RuntimeException("consumed only " + got.size());
      boolean inOrder = true;
      for (int i = 0; i < ${total}; i++) if (!got.get(i).equals("m" + i)) inOrder = false;
      System.out.println("consumed " + got.size() + " in order " + inOrder);

      // A transaction: a rolled-back publish is not stored, a committed one is.
      Channel tx = conn.createChannel();
      tx.queueDeclare("java-tx", true, false, false, null);
      tx.txSelect();
      tx.basicPublish("", "java-tx", null, "rolled-back".getBytes(StandardCharsets.UTF_8));
      tx.txRollback();
      tx.basicPublish("", "java-tx", null, "committed-1".getBytes(StandardCharsets.UTF_8));
      tx.basicPublish("", "java-tx", null, "committed-2".getBytes(StandardCharsets.UTF_8));
      tx.txCommit();
      GetResponse r1 = tx.basicGet("java-tx", false);
      GetResponse r2 = tx.basicGet("java-tx", false);
      GetResponse r3 = tx.basicGet("java-tx", false);
      tx.basicAck(r2.getEnvelope().getDeliveryTag(), true);
      tx.txCommit();
      System.out.println("tx " + new String(r1.getBody(), StandardCharsets.UTF_8) + " " + new String(r2.getBody(), StandardCharsets.UTF_8) + " " + (r3 == null));
      System.out.println("left " + tx.queueDeclarePassive("java-tx").getMessageCount());
    }
  }
}
`

describe('Java: the RabbitMQ Java client', () => {
  it('publisher confirms, manual ack with qos, a transaction', async () => {
    const javac = requireProgram('javac', 'default-jdk-headless')
    const java = requireProgram('java', 'default-jre-headless')
    if (!existsSync(clientJar)) throw new Error(`${clientJar} is missing: install the Debian package "librabbitmq-client-java" (.ci/run does this with apt-get)`)
    const dir = await tempDir()
    await writeFile(join(dir, 'Interop.java'), program)
    const cp = classPath.join(':')
    await run(javac, ['-cp', cp, '-d', dir, join(dir, 'Interop.java')], { timeout: 120_000 })
    const s = await startAmqpServer()
    const { stdout } = await run(java, ['-cp', `${cp}:${dir}`, 'Interop', s.amqpUrl], { timeout: 60_000 })
    expect(stdout.trim().split('\n')).toEqual([`confirmed ${total}`, `consumed ${total} in order true`, 'tx committed-1 committed-2 true', 'left 0'])
  })
})
