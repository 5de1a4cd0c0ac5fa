"""Judging on a Ray cluster: ``judgeflow judge ... --ray [ADDRESS]`` (the ``ray`` extra).

`judgeflow.flows.ray.driver` plans the shards and runs the workers, `judgeflow.flows.ray.shards` cuts the items
and merges the outputs, `judgeflow.flows.ray.worker` judges one shard with `judgeflow.flows.judging`, and
`judgeflow.flows.ray.limiter` keeps the providers' limits for the whole cluster. Only the driver imports Ray, and
nothing imports this package until a command asks for it.
"""
