"""CodeFormer (sczhou/CodeFormer) behind the common restorer interface. Work in progress: no SPEC yet."""
