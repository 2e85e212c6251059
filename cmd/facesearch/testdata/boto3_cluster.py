"""boto3 against three cluster nodes: writes on one, reads on the others.

Usage: python3 boto3_cluster.py URL1 URL2 URL3; prints "ok" when every
check holds. The README's cluster section shows the same calls.
"""
import random
import struct
import sys

import boto3


def npy(rows):
    """A (n, d) float32 .npy array, as numpy.save writes it."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), len(rows[0]))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    data = b"".join(struct.pack("<%df" % len(r), *r) for r in rows)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def node(url):
    return boto3.client("rekognition", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="facesearch", aws_secret_access_key="facesearch")


n1, n2, n3 = (node(u) for u in sys.argv[1:4])
rnd = random.Random(7)
alice = [rnd.gauss(0, 1) for _ in range(64)]

n1.create_collection(CollectionId="staff", Tags={"facesearch:dimension": "64"})
faces = [[x + rnd.gauss(0, 0.1) for x in alice] for _ in range(3)]
out = n1.index_faces(CollectionId="staff", Image={"Bytes": npy(faces)})
face_ids = [r["Face"]["FaceId"] for r in out["FaceRecords"]]
n1.create_user(CollectionId="staff", UserId="alice", ClientRequestToken="create-alice-1")
n1.associate_faces(CollectionId="staff", UserId="alice", FaceIds=face_ids)

# Reads that start after a write was acknowledged, on other nodes, see it.
assert n2.describe_collection(CollectionId="staff")["UserCount"] == 1
hits = n3.search_users_by_image(CollectionId="staff", Image={"Bytes": npy([alice])})["UserMatches"]
assert [m["User"]["UserId"] for m in hits] == ["alice"], hits
# A retry with the same token through another node returns the first answer.
n2.create_user(CollectionId="staff", UserId="alice", ClientRequestToken="create-alice-1")
try:
    n3.create_user(CollectionId="staff", UserId="bob", ClientRequestToken="create-alice-1")
    raise AssertionError("a reused token with other parameters was accepted")
except n3.exceptions.IdempotentParameterMismatchException:
    pass
users = [u["UserId"] for p in n3.get_paginator("list_users").paginate(CollectionId="staff") for u in p["Users"]]
assert users == ["alice"], users
print("ok")
