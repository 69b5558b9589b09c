"""The ``ray`` executor: the driver's side (:mod:`.executor`), joining a
cluster (:mod:`.joining`) and the workers (:mod:`.actor`)."""
