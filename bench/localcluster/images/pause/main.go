// Command pause is the first process of every pod sandbox the bench's kubelet starts.
//
// It holds the sandbox's namespaces open and does nothing else: it exits 0 on SIGINT or
// SIGTERM and, as PID 1 of the pod's PID namespace, reaps every child that is handed to
// it, so that no zombie stays behind. It is our own program, built by
// bench/localcluster/images/pause.py; it is not the Kubernetes project's pause image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("otel-injector bench pause")
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: %v, exiting\n", sig)
		os.Exit(0)
	}
}
