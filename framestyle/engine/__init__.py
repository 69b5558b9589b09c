"""The run: the driver plans units (plan), executors run them (executors,
unitrun), the units' events come back to the driver (driver)."""
