"""Walks facesearch's face operations with boto3 as ported Rekognition code
would, reading BoundingBox from every face it gets back. Run by
TestBoto3Walk: python3 boto3_walk.py ENDPOINT. Needs boto3 only (the .npy
bytes are built by hand, as numpy.save writes them)."""
import base64
import struct
import sys

import boto3
from botocore.config import Config

WHOLE = {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}
BOX = {"Width": 0.5, "Height": 0.25, "Left": 0.125, "Top": 0.75}


def npy(rows, boxes=None):
    """A float32 (n, d) .npy array, with boxes in its header if given."""
    d = len(rows[0])
    header = "{'descr': '<f4', "
    if boxes is not None:
        header += "'facesearch:bounding_boxes': %r, " % (boxes,)
    header += "'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), d)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    data = b"".join(struct.pack("<%df" % d, *r) for r in rows)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def box(face, want, where):
    got = face["BoundingBox"]  # as ported code reads it: no check
    assert got == want, (where, got, want)


def main(endpoint):
    rek = boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="eu-west-1",
        aws_access_key_id="facesearch", aws_secret_access_key="facesearch",
        config=Config(retries={"max_attempts": 1}),
    )
    arn = rek.create_collection(CollectionId="staff", Tags={"facesearch:similarity": "cosine"})["CollectionArn"]
    assert arn == "arn:aws:rekognition:eu-west-1:000000000000:collection/staff", arn

    out = rek.index_faces(CollectionId="staff", Image={"Bytes": npy([[1, 0, 0, 0], [0.9, 0.1, 0, 0]])},
                          ExternalImageId="alice.jpg")
    for r in out["FaceRecords"]:
        box(r["Face"], WHOLE, "IndexFaces Face")
        box(r["FaceDetail"], WHOLE, "IndexFaces FaceDetail")
    ids = [r["Face"]["FaceId"] for r in out["FaceRecords"]]
    out = rek.index_faces(CollectionId="staff", Image={"Bytes": npy([[0.8, 0.2, 0, 0]], [BOX])})
    box(out["FaceRecords"][0]["Face"], BOX, "IndexFaces Face with a header box")
    boxed = out["FaceRecords"][0]["Face"]["FaceId"]
    want = {i: WHOLE for i in ids}
    want[boxed] = BOX

    for page in rek.get_paginator("list_faces").paginate(CollectionId="staff", PaginationConfig={"PageSize": 2}):
        for f in page["Faces"]:
            box(f, want[f["FaceId"]], "ListFaces")
    matches = rek.search_faces(CollectionId="staff", FaceId=ids[0], FaceMatchThreshold=0)["FaceMatches"]
    assert len(matches) == 2, matches
    for m in matches:
        box(m["Face"], want[m["Face"]["FaceId"]], "SearchFaces")
    out = rek.search_faces_by_image(CollectionId="staff", Image={"Bytes": npy([[1, 0, 0, 0]], [BOX])},
                                    FaceMatchThreshold=0)
    assert out["SearchedFaceBoundingBox"] == BOX, out["SearchedFaceBoundingBox"]
    assert len(out["FaceMatches"]) == 3, out["FaceMatches"]
    for m in out["FaceMatches"]:
        box(m["Face"], want[m["Face"]["FaceId"]], "SearchFacesByImage")
    rek.create_user(CollectionId="staff", UserId="alice")
    rek.associate_faces(CollectionId="staff", UserId="alice", FaceIds=ids)
    out = rek.search_users_by_image(CollectionId="staff", Image={"Bytes": npy([[1, 0, 0, 0]])})
    box(out["SearchedFace"]["FaceDetail"], WHOLE, "SearchUsersByImage SearchedFace")
    assert out["UserMatches"][0]["User"]["UserId"] == "alice", out["UserMatches"]

    try:
        rek.index_faces(CollectionId="staff", Image={"Bytes": base64.b64encode(npy([[1, 0, 0, 0]]))})
        raise AssertionError("a base64-encoded .npy was accepted")
    except rek.exceptions.InvalidImageFormatException as e:
        assert "fileb://" in str(e), str(e)
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
