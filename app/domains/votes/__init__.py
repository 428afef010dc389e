"""Votes: one user's vote on one post, and the aggregates a post page shows.

Posts display vote counts in the same query as the page, so `posts` builds on this package
(the graph is users <- auth, votes <- posts); the vote endpoints live under /posts.
"""
