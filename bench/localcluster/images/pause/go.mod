// The pause program of the bench's pause image: standard library only.
module otel-injector.local/bench/pause

go 1.22
