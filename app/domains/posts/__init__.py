"""Posts: the worked example of a domain. Read this package to see how one is built.

router (thin handlers) -> dependencies (load and authorise the post in the path) ->
service (rules, events) -> repository (SQL). Vote counts come from `votes` in the same
query as the posts they belong to.
"""
