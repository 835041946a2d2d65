import DeformTensor
print("ok")
