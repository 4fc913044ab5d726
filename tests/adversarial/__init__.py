"""The adversarial catalogue: crafted inputs, one or more per defect class of issue 9, and
the probe that measures a real ``otel-injector serve`` process while it answers them."""
