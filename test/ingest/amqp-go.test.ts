import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { startAmqpServer } from '../helpers/amqp.js'
import { requireProgram } from '../helpers/programs.js'
import { tempDir } from '../helpers/temp.js'

// RabbitMQ's Go client (amqp091-go, Debian's golang-github-rabbitmq-amqp091-go-dev), built with
// Debian's Go from its GOPATH, as a Go service using it would be.

const run = promisify(execFile)
const goPath = '/usr/share/gocode'
const total = 200

const program = `
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func fail(what string, err error) {
	fmt.Printf("FAIL %s: %v\\n", what, err)
	os.Exit(1)
}

func main() {
	conn, err := amqp.Dial(os.Args[1])
	if err != nil {
		fail("dial", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		fail("channel", err)
	}
	if _, err := ch.QueueDeclare("go-q", true, false, false, false, nil); err != nil {
		fail("declare", err)
	}

	// Publish with confirms: every publish acked.
	if err := ch.Confirm(false); err != nil {
		fail("confirm", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, ${total}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < ${total}; i++ {
		msg := amqp.Publishing{ContentType: "text/plain", DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("m%d", i))}
		if err := ch.PublishWithContext(ctx, "", "go-q", false, false, msg); err != nil {
			fail("publish", err)
		}
	}
	acked := 0
	for acked < ${total} {
		select {
		case c := <-confirms:
			if !c.Ack {
				fail("confirm", fmt.Errorf("nack for %d", c.DeliveryTag))
			}
			acked++
		case <-ctx.Done():
			fail("confirms", ctx.Err())
		}
	}
	fmt.Printf("confirmed %d\\n", acked)

	// Consume with manual acks and a prefetch.
	if err := ch.Qos(10, 0, false); err != nil {
		fail("qos", err)
	}
	deliveries, err := ch.Consume("go-q", "go-consumer", false, false, false, false, nil)
	if err != nil {
		fail("consume", err)
	}
	inOrder := true
	for i := 0; i < ${total}; i++ {
		select {
		case d := <-deliveries:
			if string(d.Body) != fmt.Sprintf("m%d", i) {
				inOrder = false
			}
			if err := d.Ack(false); err != nil {
				fail("ack", err)
			}
		case <-ctx.Done():
			fail("deliveries", ctx.Err())
		}
	}
	fmt.Printf("consumed %d in order %v\\n", ${total}, inOrder)

	// NotifyClose: a channel error (a passive declare of a missing queue) closes that channel only.
	bad, err := conn.Channel()
	if err != nil {
		fail("channel 2", err)
	}
	closed := bad.NotifyClose(make(chan *amqp.Error, 1))
	if _, err := bad.QueueDeclarePassive("go-missing", true, false, false, false, nil); err == nil {
		fail("passive declare", fmt.Errorf("no error"))
	}
	select {
	case e := <-closed:
		fmt.Printf("channel closed %d %s\\n", e.Code, e.Reason)
	case <-ctx.Done():
		fail("notify close", ctx.Err())
	}
	if _, err := ch.QueueDeclarePassive("go-q", true, false, false, false, nil); err != nil {
		fail("first channel after the error", err)
	}
	fmt.Println("done")
}
`

describe('Go: amqp091-go', () => {
  it('publishes with confirms, consumes with acks, gets NotifyClose on a channel error', async () => {
    const go = requireProgram('go', 'golang-go')
    const dir = await tempDir()
    await writeFile(join(dir, 'main.go'), program)
    const env = { ...process.env, GO111MODULE: 'off', GOPATH: goPath, GOCACHE: join(dir, 'cache'), GOFLAGS: '' }
    await run(go, ['build', '-o', join(dir, 'prog'), 'main.go'], { cwd: dir, env, timeout: 120_000 }).catch((err: { stderr?: string }) => {
      throw new Error(`amqp091-go did not build (Debian package golang-github-rabbitmq-amqp091-go-dev): ${err.stderr ?? String(err)}`)
    })
    const s = await startAmqpServer()
    const { stdout } = await run(join(dir, 'prog'), [s.amqpUrl], { timeout: 60_000 })
    expect(stdout.trim().split('\n')).toEqual([
      `confirmed ${total}`,
      `consumed ${total} in order true`,
      "channel closed 404 NOT_FOUND - no queue 'go-missing' in vhost '/'",
      'done',
    ])
  })
})
