"""The boto3 edge: clients, the inventory sweep, one handler per change kind, the executor, deletion, credentials,
CloudTrail and the legacy backup. It turns core's data into calls; core never imports it.
"""
