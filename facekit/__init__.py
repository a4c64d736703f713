"""facekit: photos and videos in, aligned faces and an alignments file out."""
